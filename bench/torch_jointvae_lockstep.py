"""Our JointVAE and PyTorch's (bench/torch_jointvae.py) trained side by side from the same weights, on the same
batches and noise, each with its own Adam: do they take the same road? A diagnostic beside training:

    python -m bench.torch_jointvae_lockstep SPECS_JSON STEPS [--every K] [--seed S]

Every K steps it prints each one's reconstruction (BCE summed over pixels, mean over the batch, before the step),
how many of its encoder's 1,024 convolution outputs are on for at least one of 300 fixed images, with their
standard deviation over those images averaged over the outputs (near 0: the encoder no longer sees the image), and
the largest difference between the two networks' parameters (float32 rounding grows along the way; a wrong
gradient or update would part them at once).
"""
import argparse
import json

import numpy as np
import torch

import refnet
from bench.torch_jointvae import from_refnet, noise_to_torch, objective as torch_objective
from bench.torch_jointvae_start import encoder_liveliness, probe_images
from jointvae.data import dsprites
from jointvae.models import objective
from jointvae.models.jointvae import JointVAE, draw_noise


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", help="a dSprites specs.json")
    p.add_argument("steps", type=int)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    model = JointVAE((1, 64, 64), spec["latent_spec"], rng=np.random.default_rng([args.seed, 2]))
    net = from_refnet(model, "cpu")
    adam, torch_adam = refnet.Adam(lr=spec["lr"][0]), torch.optim.Adam(net.parameters(), lr=spec["lr"][0])
    rng = np.random.default_rng(args.seed)
    probe = probe_images()
    for step in range(1, args.steps + 1):
        x = dsprites.render(dsprites.sample_factors(64, rng)) / np.float32(255)          # (64, 1, 64, 64)
        noise = draw_noise(model, 64, rng)
        stats, grads, _ = objective.objective_and_grads(model, x, noise, spec, step)     # ours
        adam.step(model.params, grads)
        x_torch = torch.as_tensor(x)                                                       # torch's, same inputs
        x_hat, dist, _ = net(x_torch, noise_to_torch(noise, "cpu"))
        loss = torch_objective(net, x_torch, x_hat, dist, objective.kl_penalties(spec, step))
        torch_adam.zero_grad()
        loss.backward()
        torch_adam.step()
        if step % args.every == 0 or step == 1:
            with torch.no_grad():
                torch_recon = torch.nn.functional.binary_cross_entropy(x_hat, x_torch, reduction="sum").item() / 64
            difference = max(float(np.abs(model.params[name] - value.detach().numpy()).max())
                             for name, value in net.named_parameters())
            ours_on, ours_std = encoder_liveliness(from_refnet(model, "cpu"), probe)
            torch_on, torch_std = encoder_liveliness(net, probe)
            print(f"step {step}: ours recon {float(stats['recon']):.1f} conv on {ours_on} std {ours_std:.1e} | "
                  f"torch recon {torch_recon:.1f} conv on {torch_on} std {torch_std:.1e} | "
                  f"largest parameter difference {difference:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
