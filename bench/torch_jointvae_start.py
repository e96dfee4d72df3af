"""Does PyTorch's JointVAE (bench/torch_jointvae.py: Dupont's model and loss) keep its encoder over the first steps
of a dSprites spec? A check beside our own training, not a benchmark:

    python -m bench.torch_jointvae_start SPECS_JSON STEPS [--seed S]

Trains from torch's own initialisation (Adam, the spec's first learning rate, batch 64, one thread) and prints,
every 250 steps, the training batch's reconstruction after the step (BCE summed over pixels, mean over the
batch) and how many of the encoder's 1,024 convolution outputs are ever on over 300 fixed images, with their mean
standard deviation over those images (0 when the convolutions no longer see the image).
"""
import argparse
import json
import time

import numpy as np
import torch

from bench.torch_jointvae import TorchJointVAE, objective
from jointvae.data import dsprites
from jointvae.models.objective import kl_penalties


def probe_images():
    """The 300 fixed dSprites images (factors drawn with seed 5) the encoder is looked at on: (300, 1, 64, 64)."""
    return dsprites.render(dsprites.sample_factors(300, np.random.default_rng(5))) / np.float32(255)


def encoder_liveliness(net, probe):
    """A TorchJointVAE, probe images (N, 1, 64, 64) -> (how many of the 1,024 convolution outputs are on for at least
    one image, their standard deviation over the images averaged over the outputs: near 0, the encoder no longer
    sees the image)."""
    with torch.no_grad():
        features = net.img_to_features(torch.as_tensor(probe)).reshape(len(probe), -1)   # (N, 1024)
    return int(((features > 0).sum(0) > 0).sum()), features.std(0).mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", help="a dSprites specs.json (for example a study run's)")
    p.add_argument("steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    net = TorchJointVAE((1, 64, 64), spec["latent_spec"])
    opt = torch.optim.Adam(net.parameters(), lr=spec["lr"][0])
    rng = np.random.default_rng(args.seed)
    probe = probe_images()
    start = time.time()
    for step in range(args.steps):
        x = torch.as_tensor(dsprites.render(dsprites.sample_factors(64, rng)) / np.float32(255))
        x_hat, dist, _ = net(x)
        loss = objective(net, x, x_hat, dist, kl_penalties(spec, step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == args.steps - 1:
            with torch.no_grad():
                after = net(x)[0]                                   # the same batch after the step (new noise)
                recon = torch.nn.functional.binary_cross_entropy(after, x, reduction="sum").item() / len(x)
            on, std = encoder_liveliness(net, probe)
            print(f"step {step} recon {recon:.1f} convolution outputs ever on {on}/1024, mean std over images "
                  f"{std:.4f} ({time.time() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
