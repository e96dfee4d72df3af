"""JointVAE (Dupont 2018) and FactorVAE (Kim & Mnih 2018) with hand-written backward passes on refnet.

    from jointvae import load_model
    model = load_model(path)   # folder with specs.json + weights.npz, or with the original model.pt
    dist = model.encode(x)     # x float32 (N, C, H, W) in [0, 1]
    x_hat = model.decode(z)    # z (N, cont + sum(disc)) -> probabilities (N, C, H, W)

The package is in rooms (docs/architecture.md): files/, data/, models/, training/, evaluation/, sweeps/,
and the command-line front doors train, evaluate, visualize, edit, infer, experiments and sweep.
"""
from .models.jointvae import JointVAE
from .models.model_folder import load_model, save_model

__all__ = ["JointVAE", "load_model", "save_model"]
