"""A local web page to explore a model's latent space: sliders, category buttons, the decoded image.

    python -m jointvae.explore RUN_OR_MODEL [--port 8000] [--host 127.0.0.1]

RUN_OR_MODEL is a model folder (specs.json + weights.npz, or model.pt) or a training run's folder. The page
has a slider per continuous unit, most used first (KL from the folder's eval.json or log.jsonl, else each
unit's effect on the picture), the inactive ones folded away; a row of buttons per discrete latent; the
decoded image, redrawn as the controls move; a draw from the prior; an upload (PNG / JPEG, at most 10 MB)
whose eval-mode code sets the controls; the image and a traversal strip to download. The server
(jointvae/evaluation/explorer.py) listens on 127.0.0.1 unless --host says otherwise; stop it with Ctrl-C.
"""
import argparse
import sys

from .evaluation.explorer import make_server
from .models.model_folder import load_model


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jointvae.explore", description=__doc__.split("\n")[0])
    p.add_argument("path", help="model folder (specs.json + weights.npz) or a training run's folder")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port; default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be 0..65535, got {args.port}")
    try:
        model = load_model(args.path)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        server = make_server(model, args.path, args.host, args.port, quiet=args.quiet)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"explorer of {args.path}: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
