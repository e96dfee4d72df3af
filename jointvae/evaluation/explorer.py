"""The latent explorer's server: one page, a few fixed endpoints, the model decoded with the project's NumPy code.

    server = make_server(model, folder, host="127.0.0.1", port=8000)   # a ThreadingHTTPServer
    server.serve_forever()

Endpoints (anything else is 404; no request path reaches the file system):

    GET  /                          the page (EXPLORER_PAGE, a string constant in explorer_page.py)
    GET  /info                      JSON: latent_spec, image_shape, the continuous units ranked by KL
                                    (or by effect), each marked active or not
    GET  /decode?z=a,b,...          image/png: the decoded code z (D = cont + sum(disc) numbers)
    GET  /traversal?z=...&unit=K    image/png: a strip, z with unit K swept over inspection.traversal_values()
    GET  /random                    JSON {"z": [...]}: a draw from the prior
    POST /encode  (the file's bytes) JSON {"z": [...]}: the eval-mode code of an uploaded PNG / JPEG

A bad query or upload gets 400 with a one-line message; an upload over MAX_UPLOAD bytes gets 413.
The model is used under one lock, so concurrent requests are safe (and each decode is a single batch).
"""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import imageio.v3 as iio3
import numpy as np

from ..data.imagefiles import ImageFileError, read_image_bytes
from .explorer_page import EXPLORER_PAGE
from .inspection import decode, edit_codes, eval_codes, traversal_values
from .pictures import continuous_units_by_effect, latent_code, prior_parts, tile

MAX_UPLOAD = 10 * 1024 * 1024    # bytes of one uploaded image
MAX_QUERY = 64 * 1024            # characters of a query string
INACTIVE_KL = 0.05               # nats: a unit below this carries (almost) nothing
INACTIVE_EFFECT = 0.05           # of the largest effect, when there is no KL to go by


class BadRequest(ValueError):
    """A request the explorer refuses; the message is the one line sent back, status its HTTP status."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def ranked_units(model, folder=None):
    """Continuous units, most used first -> [{"unit", "kl" or "effect", "active"}].

    KL per unit from the folder's eval.json (kl_per_unit_ranked), else the last line of its log.jsonl,
    else (no record) each unit's effect on the decoded picture (pictures.continuous_units_by_effect)."""
    cont = model.latent_spec["cont"]
    if not cont:
        return []
    kl = _recorded_kl(folder, cont) if folder else None
    if kl is not None:
        order = [int(u) for u in np.argsort(-kl, kind="stable")]
        return [{"unit": u, "kl": float(kl[u]), "active": bool(kl[u] >= INACTIVE_KL)} for u in order]
    order, effect = continuous_units_by_effect(model, np.random.default_rng(0))
    top = float(effect.max()) or 1.0
    return [{"unit": u, "effect": float(effect[u]), "active": bool(effect[u] >= INACTIVE_EFFECT * top)}
            for u in order]


def _recorded_kl(folder, cont):
    """KL per continuous unit (cont,) from eval.json or log.jsonl in folder; None when neither has it."""
    try:
        with open(os.path.join(folder, "eval.json"), encoding="utf-8") as f:
            entries = json.load(f)["kl_per_unit_ranked"]
        kl = np.full(cont, np.nan)
        for entry in entries:
            kind, _, index = entry["unit"].partition(".")
            if kind == "cont" and 0 <= int(index) < cont:
                kl[int(index)] = float(entry["kl"])
        if np.all(np.isfinite(kl)):
            return kl
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        with open(os.path.join(folder, "log.jsonl"), encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        kl = np.array(json.loads(lines[-1])["kl_cont_units"], np.float64)
        if kl.shape == (cont,) and np.all(np.isfinite(kl)):
            return kl
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    return None


def png_bytes(picture):
    """uint8 (H, W) or (H, W, 3) -> the bytes of a PNG file (imageio)."""
    return iio3.imwrite("<bytes>", picture, extension=".png")


class Explorer:
    """The model behind the page: parses codes, decodes, encodes, draws from the prior, under one lock."""

    def __init__(self, model, folder=None, seed=None):
        self.model = model
        self.lock = threading.Lock()
        self.rng = np.random.default_rng(seed)
        self.units = ranked_units(model, folder)
        self.dim = model.latent_spec["cont"] + sum(model.latent_spec["disc"])

    def info(self):
        c, h, w = self.model.image_shape
        return {"latent_spec": self.model.latent_spec, "image_shape": [c, h, w], "latent_dim": self.dim,
                "units": self.units, "traversal_values": traversal_values().tolist(),
                "max_upload": MAX_UPLOAD}

    def parse_code(self, text):
        """'a,b,...' -> float32 (D,); BadRequest unless D finite numbers, one-hot where a discrete latent is."""
        parts = text.split(",") if text else []
        if len(parts) != self.dim:
            raise BadRequest(f"z must have {self.dim} comma-separated numbers, got {len(parts)}")
        try:
            z = np.array([float(p) for p in parts], np.float64)
        except ValueError:
            raise BadRequest("z must be numbers separated by commas") from None
        if not np.all(np.isfinite(z)) or np.any(np.abs(z) > 1e6):
            raise BadRequest("z must be finite numbers (no NaN or infinity, |z| <= 1e6)")
        start = self.model.latent_spec["cont"]
        for i, k in enumerate(self.model.latent_spec["disc"]):
            block = z[start:start + k]
            if not (np.all((block == 0) | (block == 1)) and block.sum() == 1):
                raise BadRequest(f"discrete latent {i} (z[{start}:{start + k}]) must be one-hot")
            start += k
        return z.astype(np.float32)

    def parse_unit(self, text):
        cont = self.model.latent_spec["cont"]
        try:
            unit = int(text)
        except (TypeError, ValueError):
            raise BadRequest("unit must be an integer") from None
        if not 0 <= unit < cont:
            raise BadRequest(f"unit {unit} is out of range: the model has {cont} continuous units")
        return unit

    def decode_png(self, z):
        with self.lock:
            x = decode(self.model, z[None])
        return png_bytes(tile(x[None], pad=0))

    def traversal_png(self, z, unit):
        codes = edit_codes(self.model, z, traversal_values(), unit=unit)
        with self.lock:
            x = decode(self.model, codes)
        return png_bytes(tile(x[None]))

    def random_code(self):
        with self.lock:
            z = latent_code(self.model, *prior_parts(self.model, self.rng, 1))[0]
        return [float(v) for v in z]

    def encode(self, content):
        c, size, _ = self.model.image_shape
        try:
            image = read_image_bytes(content, size, c, name="upload")
        except ImageFileError as e:
            raise BadRequest(str(e)) from None
        with self.lock:
            z = eval_codes(self.model, image[None])[0]
        return [float(v) for v in z]


class Handler(BaseHTTPRequestHandler):
    """The fixed endpoints; self.server.explorer is the Explorer."""

    server_version = "jointvae-explore"
    quiet = False

    def log_message(self, format, *args):   # noqa: A002 (the base class's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    def send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, value, status=200):
        self.send(status, json.dumps(value).encode(), "application/json")

    def send_error_line(self, status, message):
        self.send(status, (message.splitlines()[0] if message else "error").encode() + b"\n",
                  "text/plain; charset=utf-8")

    def query(self, url):
        if len(url.query) > MAX_QUERY:
            raise BadRequest(f"query longer than {MAX_QUERY} characters")
        try:
            fields = parse_qs(url.query, keep_blank_values=True, strict_parsing=bool(url.query),
                              max_num_fields=16)
        except ValueError:
            raise BadRequest("malformed query string") from None
        return {k: v[-1] for k, v in fields.items()}

    def handle_get(self):
        url = urlsplit(self.path)
        explorer = self.server.explorer
        if url.path == "/":
            return self.send(200, EXPLORER_PAGE.encode(), "text/html; charset=utf-8")
        if url.path == "/info":
            return self.send_json(explorer.info())
        if url.path == "/random":
            return self.send_json({"z": explorer.random_code()})
        if url.path in ("/decode", "/traversal"):
            q = self.query(url)
            if "z" not in q:
                raise BadRequest("missing z")
            z = explorer.parse_code(q["z"])
            if url.path == "/decode":
                return self.send(200, explorer.decode_png(z), "image/png")
            if "unit" not in q:
                raise BadRequest("missing unit")
            return self.send(200, explorer.traversal_png(z, explorer.parse_unit(q["unit"])), "image/png")
        raise BadRequest("not found", 404)

    def handle_post(self):
        if urlsplit(self.path).path != "/encode":
            raise BadRequest("not found", 404)
        length = self.headers.get("Content-Length")
        try:
            length = int(length)
        except (TypeError, ValueError):
            raise BadRequest("POST /encode needs a Content-Length") from None
        if length < 0:
            raise BadRequest("bad Content-Length")
        if length > MAX_UPLOAD:
            self.close_connection = True     # the body is not read
            raise BadRequest(f"upload too large: {length} bytes, at most {MAX_UPLOAD}", 413)
        if length == 0:
            raise BadRequest("empty upload")
        content = self.rfile.read(length)
        if len(content) != length:
            raise BadRequest("upload shorter than its Content-Length")
        self.send_json({"z": self.server.explorer.encode(content)})

    def respond(self, handler):
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError):   # the browser went away mid-reply (a page closed)
            self.close_connection = True
        except BadRequest as e:
            self.send_error_line(e.status, str(e))
        except Exception as e:   # a bug must not kill the server thread silently: one line, 500
            self.send_error_line(500, f"internal error: {type(e).__name__}: {e}")

    def do_GET(self):
        self.respond(self.handle_get)

    def do_HEAD(self):
        self.respond(self.handle_get)

    def do_POST(self):
        self.respond(self.handle_post)


def make_server(model, folder=None, host="127.0.0.1", port=8000, quiet=False, seed=None):
    """A ThreadingHTTPServer serving the explorer of `model` (folder: where eval.json / log.jsonl give KL).
    port 0 picks a free port: server.server_address[1]."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.explorer = Explorer(model, folder, seed)
    server.quiet = quiet
    return server
