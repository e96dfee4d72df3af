"""Time-based progress of a long count (images encoded): a line at most every few seconds, with rate and ETA.

    progress = Progress(737280, "encoding the code table", log=stderr_line, every=5.0)
    for chunk in ...:
        ...
        progress.advance(len(chunk))
    progress.finish()

A line is written when the count starts, then whenever `every` seconds have passed since the last one, then
once when it finishes; never once per chunk, so a fast run prints two lines and a slow one a line every few
seconds. `log` takes one line (the command-line tools send it to stderr, so stdout stays one JSON object);
log=None is silent.
"""
import sys
import time

EVERY = 5.0   # seconds between progress lines


def stderr_line(line):
    """The tools' progress log: one line on stderr, flushed at once."""
    print(line, file=sys.stderr, flush=True)


def duration(seconds):
    """4.2 -> '4s', 125 -> '2m05s', 4000 -> '1h06m'."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Counts `total` items of one task and logs '<task>: done/total images (p%), rate images/s, ETA t'."""

    def __init__(self, total, task, log=None, every=EVERY, unit="images", clock=time.perf_counter):
        self.total, self.task, self.log, self.every, self.unit, self.clock = int(total), task, log, every, unit, clock
        self.done = 0
        self.start = self.last = clock()
        self._write(f"{task}: {self.total:,} {unit}")

    def _write(self, line):
        if self.log is not None:
            self.log(line)

    def line(self):
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {duration((self.total - self.done) / rate)}" if rate > 0 else "ETA ?"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.task}: {self.done:,}/{self.total:,} {self.unit} ({percent:.0f}%), "
                f"{rate:,.0f} {self.unit}/s, {eta}")

    def advance(self, n):
        self.done += int(n)
        now = self.clock()
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            self._write(self.line())

    def finish(self):
        """-> seconds since the start; logs the closing line."""
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        self._write(f"{self.task}: {self.done:,} {self.unit} in {duration(elapsed)} ({rate:,.0f} {self.unit}/s)")
        return elapsed
