"""Headless Chromium driven through the DevTools protocol over a pipe: the standard library only.

With --remote-debugging-pipe the browser reads protocol commands from its file descriptor 3 and writes
replies and events to its descriptor 4, each message one JSON object ended by a NUL byte. No websocket
client, no Selenium, no driver binary: a command is a line of JSON, and `call` waits for the reply with its id.

    with HeadlessChromium(executable) as browser:
        page = browser.open("http://127.0.0.1:8000/", width=900, height=700)
        page.evaluate("document.title")
        page.click(x, y)
        png = page.screenshot()
"""
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

RENUMBER_AND_EXEC = """
import fcntl, os, sys
commands, replies = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(commands, 3)
os.dup2(replies, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The path of a Chromium-family browser on PATH, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class HeadlessChromium:
    def __init__(self, executable, timeout=30.0):
        self.executable, self.timeout = executable, timeout
        self.next_id, self.buffer, self.process = 0, b"", None

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        # A file, not a pipe: a browser that logs much would fill a pipe nobody reads and stall.
        self.stderr = tempfile.TemporaryFile()
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        flags = ["--headless", "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                 "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
                 f"--user-data-dir={self.profile}", "about:blank"]
        if os.geteuid() == 0:
            flags.insert(0, "--no-sandbox")   # Chromium's sandbox refuses to run as root
        # The browser wants the pipe on descriptors 3 and 4. A small Python renumbers them just before exec,
        # which is safe with threads running here (preexec_fn would not be; sh allows descriptors up to 9 only).
        self.process = subprocess.Popen([sys.executable, "-c", RENUMBER_AND_EXEC, str(to_browser_r),
                                         str(from_browser_w), self.executable, *flags],
                                        pass_fds=(to_browser_r, from_browser_w),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self.stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc):
        try:
            if self.process.poll() is None:
                try:
                    self.call("Browser.close", timeout=5)
                except BrowserError:
                    pass
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            self.stderr.close()
            os.close(self.to_browser)
            os.close(self.from_browser)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _stderr_tail(self):
        try:
            self.process.wait(2)   # its pipe closed: it is exiting, and its last words are in the file
        except subprocess.TimeoutExpired:
            return ""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-800:]

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no reply from Chromium in time")
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium closed its pipe (exit {self.process.poll()}): "
                                       f"{self._stderr_tail()}")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=None):
        """Send one protocol command and return its result (events that arrive meanwhile are dropped)."""
        self.next_id += 1
        command = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        try:
            os.write(self.to_browser, json.dumps(command).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"Chromium is gone (exit {self.process.poll()}): {self._stderr_tail()}") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message["result"]

    def open(self, url, width=1000, height=700):
        """A new tab at `url`, attached, of the given viewport size."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": url})
        # The browser may normalise the address (a trailing '/'): wait for any page but the blank one, loaded.
        page.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'")
        return page


class Page:
    """One attached tab: run JavaScript, click, take a screenshot."""

    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def call(self, method, params=None):
        return self.browser.call(method, params, session=self.session)

    def evaluate(self, expression):
        """The JSON value of a JavaScript expression (a promise is awaited); a thrown error raises."""
        reply = self.call("Runtime.evaluate",
                          {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return reply["result"].get("value")

    def wait_for(self, expression, timeout=30.0, every=0.05):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for: {expression}")
            time.sleep(every)

    def click(self, x, y):
        """A left click, as a mouse makes it, at page coordinates (x, y)."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "buttons": 1 if kind == "mousePressed" else 0,
                       "clickCount": 0 if kind == "mouseMoved" else 1})

    def click_element(self, selector, fraction_x=0.5):
        """Click an element at `fraction_x` of its width, at its vertical middle."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                            "return [r.left, r.top, r.width, r.height]; })()")
        left, top, width, height = box
        self.click(left + fraction_x * width, top + height / 2)

    def screenshot(self):
        """The viewport as PNG bytes."""
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
