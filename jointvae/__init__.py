"""JointVAE (Dupont 2018) with hand-written backward passes on refnet.

    from jointvae import load_model
    model = load_model(path)   # folder with specs.json + weights.npz, or with the original model.pt
    dist = model.encode(x)     # x float32 (N, C, H, W) in [0, 1]
    x_hat = model.decode(z)    # z (N, cont + sum(disc)) -> probabilities (N, C, H, W)
"""
from .checkpoint import load_model, save_model
from .model import JointVAE

__all__ = ["JointVAE", "load_model", "save_model"]
