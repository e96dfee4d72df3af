"""Train our JointVAE on a dSprites spec and, at every step, take PyTorch's gradient at the same parameters, on
the same batch and noise: where they part is where ours is wrong. A diagnostic beside training, not a benchmark:

    python -m bench.torch_jointvae_trajectory SPECS_JSON STEPS [--seed S] [--every K]

Each step: a batch of 64 dSprites images and draw_noise's noise; our objective_and_grads and, with a copy of the
same weights in bench/torch_jointvae.py's TorchJointVAE, torch's; our Adam takes our gradient. Every K steps it
prints the largest relative gradient difference per parameter, the reconstruction, and how many of the encoder's
1,024 convolution outputs are ever on over 300 fixed images.
"""
import argparse
import json

import numpy as np
import torch

import refnet
from bench.torch_jointvae import from_refnet, noise_to_torch
from bench.torch_jointvae_start import encoder_liveliness, probe_images
from bench.torch_step import loss_and_grads
from jointvae.data import dsprites
from jointvae.models import objective
from jointvae.models.jointvae import JointVAE, draw_noise


def relative_difference(ours, theirs):
    """max |a - b| / max(|b|) over one parameter's gradient."""
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", help="a dSprites specs.json")
    p.add_argument("steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=250)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    model = JointVAE((1, 64, 64), spec["latent_spec"], rng=np.random.default_rng([args.seed, 2]),
                     init=spec.get("init", "pytorch"))
    adam = refnet.Adam(lr=spec["lr"][0])
    rng = np.random.default_rng(args.seed)
    probe = probe_images()
    for step in range(1, args.steps + 1):
        x = dsprites.render(dsprites.sample_factors(64, rng)) / np.float32(255)
        noise = draw_noise(model, 64, rng)
        stats, grads, _ = objective.objective_and_grads(model, x, noise, spec, step)
        if step % args.every == 0 or step == 1:
            nets = {"model": from_refnet(model, "cpu")}
            losses, torch_grads = loss_and_grads(nets, spec, step, torch.as_tensor(x), noise_to_torch(noise, "cpu"))
            worst = sorted(((relative_difference(grads[name], g.numpy()), name) for name, g in torch_grads.items()),
                           reverse=True)[:3]
            features, _ = encoder_liveliness(nets["model"], probe)
            print(f"step {step} objective ours {float(stats['objective']):.4f} torch {losses['objective']:.4f} "
                  f"recon {float(stats['recon']):.1f} kl_cont {float(stats['kl_cont']):.2f} "
                  f"kl_disc {float(stats['kl_disc']):.3f} conv on {features}/1024 worst grad differences "
                  + ", ".join(f"{name} {d:.1e}" for d, name in worst), flush=True)
        adam.step(model.params, grads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
