"""How long the latent explorer takes to answer one decode over HTTP (issue 21's goal: under 50 ms for MNIST).

    python -m bench.explorer_latency [MODEL_FOLDER] [--requests N]

Starts the explorer's server on a free local port, sends N GET /decode requests (after 10 untimed ones),
each on a new connection as a browser's slider would (a code from /random), and prints the median and the maximum.
"""
import argparse
import http.client
import json
import statistics
import threading
import time

from jointvae import load_model
from jointvae.evaluation.explorer import make_server


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.explorer_latency", description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="pretrained/mnist", help="model folder (default pretrained/mnist)")
    p.add_argument("--requests", type=int, default=50, help="timed requests (default 50)")
    args = p.parse_args(argv)
    model = load_model(args.model)
    server = make_server(model, args.model, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    connection.request("GET", "/random")                  # a valid code: discrete blocks one-hot
    z = ",".join(map(str, json.loads(connection.getresponse().read())["z"]))
    times = []
    for i in range(10 + args.requests):
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
        start = time.perf_counter()
        connection.request("GET", f"/decode?z={z}")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"error: /decode answered {response.status}")
        if i >= 10:
            times.append((time.perf_counter() - start) * 1e3)
    server.shutdown()
    print(f"{args.model}: GET /decode over HTTP, {args.requests} requests: median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
