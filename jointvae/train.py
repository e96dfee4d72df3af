"""python -m jointvae.train mnist|fashion-mnist|dsprites|chairs PATH|celeba PATH|folder PATH [options]

Trains JointVAE (or, with --model, β-VAE, capacity β-VAE, FactorVAE or JointVAE x FactorVAE)
with the published spec for the dataset (or --spec FILE), writing checkpoints,
a JSONL log and pictures into --out.

    python -m jointvae.train fashion-mnist                        # the published Fashion-MNIST spec
    python -m jointvae.train celeba data/img_align_celeba         # the published CelebA spec, RGB 64x64
    python -m jointvae.train chairs data/rendered_chairs          # the published chairs spec, grey 64x64
    python -m jointvae.train folder photos/ --size 32 --channels 1   # any images, with the CelebA spec
    python -m jointvae.train folder --out runs/folder --resume    # the folder is recorded in specs.json

Image folders are read once and cached (jointvae.data.folder).
"""
import argparse
import json
import math
import os
import sys

from threadpoolctl import threadpool_limits

import refnet

from .training.stopping import TrainingStopped

from .data.registry import FOLDER_DATASETS, REGISTRY, dataset_name
from .models.specs import DEFAULT_SPECS, FOLDER_SPEC, MODELS, SpecError, load_spec, validate_spec


def bounded(kind, minimum, maximum=None):
    """An argparse type: a number of `kind` (int or float) in [minimum, maximum], finite; else argparse's
    one-line error naming the option, the value and what is allowed."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            allowed = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value
    parse.__name__ = kind.__name__   # argparse names the type in its messages
    return parse


MAX_SEED = 2**63 - 1


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m jointvae.train", description=__doc__.splitlines()[0])
    p.add_argument("dataset", type=dataset_name, choices=sorted(REGISTRY),
                   help="dataset to train on")
    p.add_argument("path", nargs="?", help=f"image folder, for {', '.join(FOLDER_DATASETS)} "
                                           "(recorded in the run: --resume needs no PATH)")
    p.add_argument("--size", type=int, choices=(32, 64), help="folder: image side, as the model takes (default 64)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="folder: 1 grey, 3 RGB (default 3)")
    p.add_argument("--model", choices=MODELS, help="which model's preset spec (default jointvae)")
    p.add_argument("--spec", help="a specs.json in the published format (default: the paper's spec)")
    p.add_argument("--epochs", type=bounded(int, 1), help="epochs (default: the spec's, 100 for mnist)")
    p.add_argument("--steps", type=bounded(int, 1), help="stop after this many training steps in all")
    p.add_argument("--batch-size", type=bounded(int, 1, 65536), help="images per step (default: the spec's, 64)")
    p.add_argument("--lr", type=bounded(float, 1e-12, 1.0), help="Adam's learning rate (default: the spec's)")
    p.add_argument("--init", choices=("pytorch", "pytorch-0.4"),
                   help="initialisation: today's PyTorch default (default) or torch 0.4's, which trained the "
                        "published models (transposed convolutions differ)")
    p.add_argument("--seed", type=bounded(int, 0, MAX_SEED),
                   help="seed for initialisation, data order and noise (default 0)")
    p.add_argument("--out", help="output folder (default: runs/DATASET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="cpu (default): NumPy; gpu: CuPy, the step on our own kernels replayed as one CUDA graph")
    p.add_argument("--no-graph", action="store_true",
                   help="gpu: run the same kernels eagerly, step by step, instead of replaying a CUDA graph")
    p.add_argument("--checkpoint-every", type=bounded(int, 1), default=1000,
                   help="steps between checkpoints (default 1000)")
    p.add_argument("--print-every", type=bounded(int, 1), default=500, help="steps between progress lines (default 500)")
    p.add_argument("--no-pictures", action="store_true", help="skip the pictures (frames and final PNGs)")
    p.add_argument("--threads", type=bounded(int, 1, 1024),
                   help="BLAS threads on the CPU (default 1: the matrices are small, and extra threads on a busy "
                        "machine make a run many times slower; a resumed run keeps its own count)")
    return p.parse_args(argv)


def build_trainer(args):
    from .training.trainer import Trainer
    out = args.out or os.path.join("runs", args.dataset if args.model in (None, "jointvae")
                                   else f"{args.dataset}-{args.model}")
    checkpoint = os.path.join(out, "checkpoint.npz")
    saved_args = {}
    check_folder_args(args)
    check_device_args(args)
    if args.resume:
        if not os.path.exists(checkpoint):
            raise SystemExit(f"error: --resume: {checkpoint} does not exist")
        fixed = [f"--{n.replace('_', '-')}" for n in ("spec", "seed", "batch_size", "lr", "init", "size", "channels")
                 if getattr(args, n) is not None]
        if fixed:
            raise SystemExit(f"error: --resume continues the run as it was set up: drop {' '.join(fixed)}")
        spec = load_spec(os.path.join(out, "specs.json"))
        if args.model is not None and args.model != spec["model"]:
            raise SystemExit(f"error: --resume: {out} holds a {spec['model']} run, not {args.model}")
        if spec.get("dataset") != args.dataset:
            raise SystemExit(f"error: --resume: {out} holds a {spec.get('dataset')} run, not {args.dataset}")
        recorded = spec.get("folder")
        if args.path is not None and recorded is not None and not same_folder(args.path, recorded):
            raise SystemExit(f"error: --resume: {out} was trained on {recorded}, not {args.path} "
                             f"(drop PATH to continue on the recorded folder)")
        saved_args = read_train_args(os.path.join(out, "train_args.json"))
        args.seed = saved_args["seed"]
    else:
        if os.path.exists(checkpoint):
            raise SystemExit(f"error: {out} already holds a run: pass --resume to continue it, or choose another --out")
        if args.spec and args.model:
            raise SystemExit("error: --spec names its model itself: drop --model")
        model = args.model or "jointvae"
        if not args.spec and (args.dataset, model) not in DEFAULT_SPECS:
            presets = sorted(m for d, m in DEFAULT_SPECS if d == args.dataset)
            raise SystemExit(f"error: no preset for --model {model} on {args.dataset}: "
                             f"choose one of {presets} or pass --spec")
        spec = load_spec(args.spec) if args.spec else validate_spec(DEFAULT_SPECS[(args.dataset, model)])
        spec.setdefault("dataset", args.dataset)
        if args.dataset in FOLDER_DATASETS:
            spec.update(dataset=args.dataset, folder=os.path.abspath(args.path))
            if args.dataset == "folder":   # the preset's (or --spec's) shape, unless the command line says otherwise
                channels, size, _ = spec.get("image_shape", FOLDER_SPEC["image_shape"])
                size = args.size or size
                spec["image_shape"] = [args.channels or channels, size, size]
        if args.init is not None:
            spec["init"] = args.init
        args.seed = 0 if args.seed is None else args.seed
    args.threads = choose_threads(args.threads, saved_args.get("blas_threads") if args.resume else None)
    trainer = Trainer(spec, out, seed=args.seed, blas_threads=args.threads,
                      epochs=args.epochs if args.epochs is not None else saved_args.get("epochs"),
                      max_steps=args.steps if args.steps is not None else saved_args.get("max_steps"),
                      batch_size=None if args.resume else args.batch_size,
                      lr=None if args.resume else args.lr, device=args.device, graph=not args.no_graph,
                      checkpoint_every=args.checkpoint_every, print_every=args.print_every)
    if args.resume:
        trainer.load_checkpoint()
        if args.steps is not None and args.steps <= trainer.step:
            raise SystemExit(f"error: --steps {args.steps}: the run in {out} is already at step {trainer.step}; "
                             f"pass a larger --steps to train on")
        print(f"resuming {out} at step {trainer.step}")
    return trainer


def choose_threads(asked, recorded):
    """BLAS threads: --threads, else the resumed run's own count, else 1. A resume with another count than the
    run had gives slightly other weights (BLAS sums in another order): said, not refused."""
    if asked is not None and recorded is not None and asked != recorded:
        print(f"note: this run trained with {recorded} BLAS thread(s); with {asked} its weights will differ "
              f"slightly from an uninterrupted run's", file=sys.stderr)
    return asked or recorded or 1


def read_train_args(path):
    """train_args.json of a run -> its settings, checked: ValueError naming the file and the field."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (the run folder is incomplete)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: must hold a JSON object, not {type(saved).__name__}")
    fields = {"seed": (0, False), "epochs": (1, True), "max_steps": (1, True)}   # minimum, may be null
    if saved.get("blas_threads") is not None:   # absent or null in runs from before it was recorded
        fields["blas_threads"] = (1, True)
    for key, (minimum, nullable) in fields.items():
        value = saved.get(key)
        if value is None and nullable and key in saved:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{path}: {key!r} must be an integer >= {minimum}"
                             f"{' or null' if nullable else ''}, got {value!r}")
    return saved


def check_device_args(args):
    if args.no_graph and args.device != "gpu":
        raise SystemExit("error: --no-graph goes with --device gpu (the CPU step has no graph)")


def check_folder_args(args):
    """PATH, --size and --channels only where they mean something; a new folder run needs an existing PATH."""
    if args.dataset not in FOLDER_DATASETS:
        if args.path is not None:
            raise SystemExit(f"error: {args.dataset} takes no PATH (only {', '.join(FOLDER_DATASETS)} read a folder)")
    elif args.path is None and not args.resume:
        raise SystemExit(f"error: {args.dataset} needs the image folder: python -m jointvae.train {args.dataset} PATH")
    elif args.path is not None and not os.path.isdir(args.path):
        raise SystemExit(f"error: {args.path}: no such folder")
    if args.dataset != "folder" and (args.size is not None or args.channels is not None):
        shape = "" if args.dataset not in FOLDER_DATASETS else " (its published images are 64x64)"
        raise SystemExit(f"error: --size and --channels go with `folder`, not {args.dataset}{shape}")


def same_folder(a, b):
    """Whether two paths name the same folder (symlinks and relative paths resolved)."""
    return os.path.realpath(a) == os.path.realpath(b)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    refnet.retain_freed_memory()   # the same arrays every step: keep their pages mapped (refnet/memory.py)
    try:
        trainer = build_trainer(args)
        on_epoch_end = None
        if not args.no_pictures:
            from .evaluation.pictures import save_epoch_frame
            on_epoch_end = save_epoch_frame
        with threadpool_limits(limits=trainer.blas_threads, user_api="blas"):
            trainer.run(on_epoch_end=on_epoch_end)
    except TrainingStopped as stopped:
        print(f"{stopped}; checkpoint written. Continue with: python -m jointvae.train {args.dataset} "
              f"--out {trainer.out_dir} --resume", file=sys.stderr)
        return stopped.exit_status
    except (SpecError, ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"trained {trainer.step} steps; model in {trainer.out_dir}")
    if not args.no_pictures:
        from .evaluation.pictures import write_all
        for path in write_all(trainer.out_dir, model=trainer.model, dataset=trainer.spec.get("dataset")):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
