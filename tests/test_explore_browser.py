"""The explorer in a real browser: headless Chromium loads the page for pretrained/mnist, a mouse moves a slider
and presses a category, the decoded image changes each time, and a screenshot is saved.

Skips, saying why, where no Chromium is installed (.ci/run installs Debian's `chromium` where it can).
Set JOINTVAE_SCREENSHOT=path.png to keep the screenshot (docs/explorer-mnist.png is made that way).
"""
import base64
import io
import os
import threading
from pathlib import Path

import imageio.v3 as iio3
import numpy as np
import pytest

from jointvae import load_model
from jointvae.evaluation.explorer import make_server

from headless_chromium import BrowserError, HeadlessChromium, find_chromium

MNIST = Path(__file__).resolve().parent.parent / "pretrained" / "mnist"
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt install chromium)")

SETTLED = "!busy && !pending && $('image').src.startsWith('blob:') && $('image').src"
IMAGE_BYTES = """(async () => {
  const bytes = new Uint8Array(await (await fetch($('image').src)).arrayBuffer());
  let text = ''; for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
})()"""


@pytest.fixture(scope="module")
def server():
    server = make_server(load_model(MNIST), str(MNIST), port=0, quiet=True, seed=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(server):
    host, port = server.server_address[:2]
    try:
        with HeadlessChromium(CHROMIUM) as browser:
            yield browser.open(f"http://{host}:{port}/", width=1000, height=720)
    except BrowserError as e:
        if any(sign in str(e) for sign in ("Chromium closed its pipe", "Chromium is gone", "no reply")):
            pytest.skip(f"Chromium would not start here: {e}")
        raise


def shown_image(page):
    """The image the page shows now, decoded: (32, 32) uint8 for MNIST."""
    return iio3.imread(io.BytesIO(base64.b64decode(page.evaluate(IMAGE_BYTES))))


def redrawn(page, before):
    """Wait until the page has drawn an image other than the blob URL `before`; return the pixels."""
    page.wait_for(f"({SETTLED}) && $('image').src !== {before!r}")
    return shown_image(page)


def test_slider_and_category_redraw_the_image(page, tmp_path):
    first = page.wait_for(SETTLED)   # the page built its controls and drew the zero code
    start = shown_image(page)
    assert start.shape == (32, 32)
    units = page.evaluate("info.units.filter(u => u.active).map(u => u.unit)")
    assert units, "the MNIST model has active continuous units"

    # Drag-free slider move: a click near the right end of the most active unit's track.
    page.click_element("#active input[type=range]", fraction_x=0.92)
    value = page.evaluate(f"+$('u{units[0]}').value")
    assert value > 2.0, f"the click moved unit {units[0]}'s slider to {value}"
    moved = redrawn(page, first)
    assert np.abs(moved.astype(int) - start).max() > 64, "moving the slider changed the image"
    assert page.evaluate(f"z[{units[0]}]") == pytest.approx(value)

    # Press category 5 of the discrete latent (the zero code has category 0 on).
    second = page.evaluate("$('image').src")
    page.click_element("#d0_5")
    assert page.evaluate("$('d0_5').classList.contains('on') && !$('d0_0').classList.contains('on')")
    category = redrawn(page, second)
    assert np.abs(category.astype(int) - moved).max() > 64, "pressing a category changed the image"

    # The traversal strip of the selected unit (the most active one), drawn beside the image.
    page.click_element("#traverse")
    page.wait_for("!$('strip').hidden && $('strip').complete && $('strip').naturalWidth > 0")
    width, height = page.evaluate("[$('strip').naturalWidth, $('strip').naturalHeight]")
    assert height >= 32 and width > 4 * height, (width, height)   # a row of pictures

    assert page.evaluate("$('error').textContent") == ""
    assert page.evaluate("$('status').textContent").startswith("decoded in ")

    shot = page.screenshot()
    path = Path(os.environ.get("JOINTVAE_SCREENSHOT") or tmp_path / "explorer-mnist.png")
    path.write_bytes(shot)
    picture = iio3.imread(path)
    assert picture.shape[:2] == (720, 1000)
    assert picture.std() > 10, "the screenshot shows the page, not a blank viewport"
    print(f"screenshot: {path}")


def test_a_failed_check_is_caught(page):
    """The checks above can fail: an image compared with itself after no change does not pass them."""
    page.wait_for(SETTLED)
    now = shown_image(page)
    assert not np.abs(now.astype(int) - now).max() > 64
    with pytest.raises(BrowserError, match="timed out"):
        page.wait_for(f"({SETTLED}) && $('image').src !== $('image').src", timeout=0.3)
