"""Does a JointVAE run on dSprites keep its encoder through the first steps? One line per training seed.

    python docs/dsprites-study/early_collapse.py SWEEP_FILE NAME_PREFIX --seeds 0 1 2 --steps 2000 --out DIR

For each seed S, the spec of the sweep's points named NAME_PREFIX... (what the study trains; seeds outside the
sweep's own too) is trained with seed S for --steps steps into DIR/seed=S (jointvae.training.Trainer, one BLAS thread), then its encoder is looked at on
300 fixed images:
- `conv on`: how many of the encoder's 1,024 convolution outputs are positive for at least one image;
- `conv std`: their standard deviation over the images, averaged over the outputs (near 0: the convolutions give
  every image the same features, and nothing the decoder learns can reach the encoder through them);
- `code spread`: the largest standard deviation over the images of a posterior mean (near 0: every image gets the
  same code, whatever KL it carries);
and the reconstruction (BCE summed over pixels) of the last logged step.
"""
import argparse
import json
import os

import numpy as np

from jointvae.data import dsprites
from jointvae.sweeps.sweep_file import load_sweep
from jointvae.training.trainer import Trainer

PROBE_IMAGES = 300


def encoder_health(model, images):
    """images (N, 1, 64, 64) in [0, 1] -> {'conv_on', 'conv_std', 'code_spread'} (see the module's docstring)."""
    features, _ = model.children["img_to_features"].forward(images)
    features = features.reshape(len(images), -1)                                  # (N, 1024)
    dist, _ = model.encode_forward(images)
    return {"conv_on": int(((features > 0).sum(axis=0) > 0).sum()),
            "conv_std": float(features.std(axis=0).mean()),
            "code_spread": float(dist["cont"][0].std(axis=0).max())}


def spec_of(sweep, prefix):
    """The spec of the sweep's points whose names start with prefix (they differ only in their seed)."""
    specs = {json.dumps(p["spec"], sort_keys=True) for p in sweep.points if p["name"].startswith(prefix)}
    if len(specs) != 1:
        raise SystemExit(f"error: {len(specs)} specs among the sweep's points named {prefix!r}..., expected one")
    return json.loads(specs.pop())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep")
    p.add_argument("prefix", help="the point's name up to its seed, e.g. 'cont_capacity=...,model=jointvae,'")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--out", required=True, help="where each seed's short run goes (DIR/seed=S)")
    args = p.parse_args(argv)
    sweep = load_sweep(args.sweep)
    probe = dsprites.render(dsprites.sample_factors(PROBE_IMAGES, np.random.default_rng(5))) / np.float32(255)
    spec = spec_of(sweep, args.prefix)
    for seed in args.seeds:
        out = os.path.join(args.out, f"seed={seed}")
        os.makedirs(out, exist_ok=True)
        trainer = Trainer(spec, out, seed=seed, max_steps=args.steps,
                          checkpoint_every=args.steps, print_every=args.steps, log=lambda line: None,
                          blas_threads=1)
        trainer.run()
        with open(os.path.join(out, "log.jsonl"), encoding="utf-8") as f:
            last = json.loads(f.read().splitlines()[-1])
        health = encoder_health(trainer.model, probe)
        print(f"seed {seed} step {trainer.step}: recon {last['recon']:.1f} kl_cont {last['kl_cont']:.2f} "
              f"conv on {health['conv_on']}/1024 conv std {health['conv_std']:.2e} "
              f"code spread {health['code_spread']:.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
