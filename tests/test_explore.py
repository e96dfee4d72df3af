"""The latent explorer (python -m jointvae.explore) over HTTP: every endpoint, and each bad request refused."""
import http.client
import io
import json
import threading
from pathlib import Path

import imageio.v3 as iio3
import numpy as np
import pytest

from jointvae import JointVAE, load_model, save_model
from jointvae.evaluation.explorer import MAX_UPLOAD, make_server

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "pretrained" / "mnist"


def serve(model, folder):
    server = make_server(model, folder, port=0, quiet=True, seed=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def request(server, method, path, body=None, headers=None):
    """-> (status, content type, body bytes)."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def mnist():
    server = serve(load_model(MNIST), str(MNIST))
    yield server
    server.shutdown()
    server.server_close()


def zero_code(spec):
    z = [0.0] * spec["cont"]
    for k in spec["disc"]:
        z += [1.0] + [0.0] * (k - 1)
    return z


def q(z):
    return ",".join(str(v) for v in z)


def png(content):
    return iio3.imread(io.BytesIO(content))


def test_binds_localhost_by_default(mnist):
    assert mnist.server_address[0] == "127.0.0.1"


def test_page_and_info(mnist):
    status, kind, body = request(mnist, "GET", "/")
    assert status == 200 and kind.startswith("text/html") and b"/decode?" in body
    status, kind, body = request(mnist, "GET", "/info")
    info = json.loads(body)
    assert status == 200 and info["latent_spec"] == {"cont": 10, "disc": [10]} and info["latent_dim"] == 20
    units = info["units"]
    assert sorted(u["unit"] for u in units) == list(range(10))
    kl = [u["kl"] for u in units]
    assert kl == sorted(kl, reverse=True)                        # ranked by the recorded KL
    assert units[0]["active"] and not units[-1]["active"]         # the pretrained model leaves units unused


def test_decode_random_traversal(mnist):
    z = zero_code({"cont": 10, "disc": [10]})
    status, kind, body = request(mnist, "GET", "/decode?z=" + q(z))
    assert status == 200 and kind == "image/png" and png(body).shape == (32, 32)
    status, _, body = request(mnist, "GET", "/random")
    z = json.loads(body)["z"]
    assert status == 200 and len(z) == 20 and sum(z[10:]) == 1
    status, kind, body = request(mnist, "GET", f"/traversal?z={q(z)}&unit=2")
    picture = png(body)
    assert status == 200 and kind == "image/png" and picture.shape == (36, 2 + 10 * 34)


def test_encode_sets_the_eval_code(mnist, tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    body = iio3.imwrite("<bytes>", digit, extension=".png")
    status, kind, out = request(mnist, "POST", "/encode", body)
    z = json.loads(out)["z"]
    assert status == 200 and kind == "application/json" and len(z) == 20 and sum(z[10:]) == 1
    jpeg = iio3.imwrite("<bytes>", np.stack([digit] * 3, -1), extension=".jpg")
    assert request(mnist, "POST", "/encode", jpeg)[0] == 200


@pytest.mark.parametrize("path, message", [
    ("/decode?z=1,2,3", b"20 comma-separated"),                          # bad length
    ("/decode?z=" + q(["nan"] + [0] * 9 + [1] + [0] * 9), b"finite"),    # NaN
    ("/decode?z=" + q(["inf"] + [0] * 9 + [1] + [0] * 9), b"finite"),
    ("/decode?z=" + q(["x"] + [0] * 9 + [1] + [0] * 9), b"numbers"),     # not a number
    ("/decode?z=" + q([0] * 20), b"one-hot"),                            # no category chosen
    ("/decode", b"missing z"),
    ("/traversal?z=" + q([0] * 10 + [1] + [0] * 9) + "&unit=10", b"out of range"),   # unknown unit
    ("/traversal?z=" + q([0] * 10 + [1] + [0] * 9) + "&unit=-1", b"out of range"),
    ("/traversal?z=" + q([0] * 10 + [1] + [0] * 9) + "&unit=two", b"integer"),
    ("/traversal?z=" + q([0] * 10 + [1] + [0] * 9), b"missing unit"),
])
def test_bad_queries_get_400(mnist, path, message):
    status, kind, body = request(mnist, "GET", path)
    assert status == 400 and kind.startswith("text/plain") and message in body and body.count(b"\n") == 1


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/etc/passwd", "/decode/../../etc/passwd", "/index.html",
                                  "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/info/"])
def test_unknown_paths_get_404(mnist, path):
    status, _, body = request(mnist, "GET", path)
    assert status == 404 and b"root:" not in body
    assert request(mnist, "POST", path, b"x")[0] == 404


def test_bad_uploads(mnist):
    status, _, body = request(mnist, "POST", "/encode", b"this is not an image")
    assert status == 400 and b"upload" in body
    assert request(mnist, "POST", "/encode", b"")[0] == 400
    # Over the limit: refused from the Content-Length, before the body is sent (the server reads none of it)
    conn = http.client.HTTPConnection(*mnist.server_address[:2], timeout=60)
    conn.putrequest("POST", "/encode")
    conn.putheader("Content-Length", str(MAX_UPLOAD + 1))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and b"too large" in r.read()
    conn.close()
    for length in ("ten", "-5"):
        conn = http.client.HTTPConnection(*mnist.server_address[:2], timeout=60)
        conn.putrequest("POST", "/encode")
        conn.putheader("Content-Length", length)
        conn.endheaders()
        assert conn.getresponse().status == 400
        conn.close()
    tiny = iio3.imwrite("<bytes>", np.zeros((4, 4), np.uint8), extension=".png")
    assert request(mnist, "POST", "/encode", tiny)[0] == 400


def test_concurrent_requests_agree(mnist):
    z = q(zero_code({"cont": 10, "disc": [10]}))
    expected = request(mnist, "GET", "/decode?z=" + z)[2]
    results = []
    threads = [threading.Thread(target=lambda: results.append(request(mnist, "GET", "/decode?z=" + z)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r[0] == 200 and r[2] == expected for r in results)


@pytest.mark.parametrize("shape, spec", [((1, 32, 32), {"cont": 4, "disc": []}),
                                         ((3, 64, 64), {"cont": 3, "disc": []}),
                                         ((1, 64, 64), {"cont": 2, "disc": [3]})])
def test_other_models(tmp_path, shape, spec):
    """Continuous only (beta-VAE / FactorVAE), RGB 64x64, grey 64x64; no record of KL: ranked by effect."""
    model = JointVAE(shape, spec, rng=np.random.default_rng(1))
    capacity = [0.0, 5.0, 25000, 30.0]
    save_model(tmp_path, model, {"latent_spec": spec, "cont_capacity": capacity,
                                 **({"disc_capacity": capacity} if spec["disc"] else {})})
    server = serve(load_model(tmp_path), str(tmp_path))
    try:
        info = json.loads(request(server, "GET", "/info")[2])
        assert len(info["units"]) == spec["cont"] and all("effect" in u for u in info["units"])
        z = json.loads(request(server, "GET", "/random")[2])["z"]
        status, _, body = request(server, "GET", "/decode?z=" + q(z))
        c, h, w = shape
        assert status == 200 and png(body).shape == ((h, w) if c == 1 else (h, w, 3))
        assert request(server, "GET", f"/traversal?z={q(z)}&unit={spec['cont'] - 1}")[0] == 200
        upload = iio3.imwrite("<bytes>", np.full((40, 50, 3), 128, np.uint8), extension=".png")
        status, _, body = request(server, "POST", "/encode", upload)
        assert status == 200 and len(json.loads(body)["z"]) == len(z)
        assert request(server, "GET", "/decode?z=" + q(z[:-1]))[0] == 400
    finally:
        server.shutdown()
        server.server_close()


def test_command_line_refuses_a_missing_folder(tmp_path, capsys):
    from jointvae.explore import main
    assert main([str(tmp_path / "nothing")]) == 2
    assert "error" in capsys.readouterr().err


def test_a_client_gone_mid_reply_is_not_answered():
    """A browser that closed its page mid-reply: the handler drops the connection, and writes nothing more."""
    from jointvae.evaluation.explorer import Handler

    class Gone:
        close_connection = False
        written = []

        def send_error_line(self, status, message):
            self.written.append((status, message))

    def reply():
        raise BrokenPipeError(32, "Broken pipe")

    handler = Gone()
    Handler.respond(handler, reply)
    assert handler.close_connection and handler.written == []
