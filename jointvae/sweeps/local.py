"""The local engine: N worker processes on this machine, one BLAS thread each, a live progress table on stderr.

    LocalEngine(workers=None, log_dir=None).run(tasks) -> {name: exit status}

Each task's argv runs as a child process with OPENBLAS_NUM_THREADS=1 (and OMP, MKL), its output appended to
log_dir/NAME.log. A SIGINT or SIGTERM to the engine is passed on to every running child (which writes its
checkpoint and exits 128 + the signal) and no new task starts; run() then returns, and `stopped` holds the signal.
"""
import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time

Task = collections.namedtuple("Task", "name argv")

STEP = re.compile(r"step (\d+)/(\d+) loss ([-\d.eE+naif]+)")
RATE = re.compile(r"([\d.]+) steps/s ETA (\S+)")   # the trainer's progress line ends so
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def default_workers():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def status_word(code):
    """A finished task's state: done, stopped (by a signal, its checkpoint written), unstarted, or exit N."""
    if code is None:
        return "unstarted"
    if code == 0:
        return "done"
    if code < 0 or code - 128 in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        return "stopped"
    return f"exit {code}"


def tail(path, size=4096):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class LocalEngine:
    def __init__(self, workers=None, log_dir=None, stream=None, refresh=1.0, plain_every=30.0, gpus=0, per_gpu=1):
        """gpus > 0: K = per_gpu processes per GPU (workers = gpus * per_gpu), each child seeing only its GPU
        (CUDA_VISIBLE_DEVICES); small models leave a GPU mostly idle with one process."""
        self.gpu_slots = [str(gpu) for gpu in range(gpus) for _ in range(per_gpu)]   # one entry per worker
        self.workers = len(self.gpu_slots) if gpus else workers or default_workers()
        self.log_dir = log_dir
        self.stream = stream or sys.stderr
        self.refresh, self.plain_every = refresh, plain_every
        self.stopped = None          # the signal that stopped the run, else None
        self._children = {}

    def log_path(self, name):
        return os.path.join(self.log_dir, f"{name}.log") if self.log_dir else os.devnull

    def run(self, tasks):
        tasks = list(tasks)
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
        env = {**os.environ, **ONE_THREAD}
        queue, running, done, slots = collections.deque(tasks), {}, {}, {}
        self._children = running
        started = {}
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, self._note) for s in (signal.SIGINT, signal.SIGTERM)}
        live = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        drawn, last_plain = 0, time.monotonic()
        try:
            while queue or running:
                while queue and len(running) < self.workers and self.stopped is None:
                    task = queue.popleft()
                    child_env = env
                    if self.gpu_slots:   # the first GPU slot no running task holds
                        held = [slots[name] for name in running]
                        free = [s for s in range(len(self.gpu_slots)) if s not in held]
                        slots[task.name] = free[0]
                        child_env = {**env, "CUDA_VISIBLE_DEVICES": self.gpu_slots[free[0]]}
                    with open(self.log_path(task.name), "ab") as out:
                        running[task.name] = subprocess.Popen(task.argv, stdout=out, stderr=subprocess.STDOUT,
                                                              env=child_env)
                    started[task.name] = time.monotonic()
                    if not live:
                        self._say(f"started {task.name}")
                if self.stopped is not None and queue:
                    for task in queue:
                        done[task.name] = None   # never started
                    queue.clear()
                time.sleep(self.refresh if live else min(self.refresh, 0.2))
                for name, child in list(running.items()):
                    if child.poll() is not None:
                        done[name] = child.returncode
                        del running[name]
                        if not live:
                            self._say(f"{status_word(child.returncode)} {name} "
                                      f"(exit {child.returncode}, {time.monotonic() - started[name]:.0f} s)")
                rows = self._table(tasks, running, done, started)
                if live:
                    drawn = self._draw(rows, drawn)
                elif time.monotonic() - last_plain >= self.plain_every and running:
                    self._say("\n".join(rows))
                    last_plain = time.monotonic()
        finally:
            for child in running.values():   # only on an error in the loop itself
                child.terminate()
                child.wait()
            for s, handler in previous.items():
                signal.signal(s, handler)
        self._say("\n".join(self._table(tasks, running, done, started)) if not live else "")
        return done

    def _note(self, signum, frame):
        if self.stopped is None:
            self.stopped = signum
            self._say(f"{signal.Signals(signum).name}: stopping the running tasks (each writes its checkpoint)")
        for child in self._children.values():
            child.send_signal(signal.SIGTERM)

    def _table(self, tasks, running, done, started):
        counts = collections.Counter()
        rows = [f"{'run':<40} {'state':<9} {'step':>13} {'loss':>10} {'time':>7} {'steps/s':>8} {'ETA':>8}"]
        for task in tasks:
            progress, loss, rate, eta = "", "", "", ""
            text = tail(self.log_path(task.name)) if task.name in started else ""
            found = STEP.findall(text)
            if found:
                step, total, loss = found[-1]
                progress = f"{step}/{total}"
            if task.name in running and RATE.findall(text):
                rate, eta = RATE.findall(text)[-1]
            if task.name in running:
                state = "running"
            elif task.name in done:
                state = status_word(done[task.name])
            else:
                state = "queued"
            counts[state.split()[0]] += 1
            elapsed = f"{time.monotonic() - started[task.name]:.0f}s" if task.name in running else ""
            rows.append(f"{task.name[:40]:<40} {state:<9} {progress:>13} {loss[:10]:>10} {elapsed:>7} {rate:>8} {eta:>8}")
        rows.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        return rows

    def _draw(self, rows, drawn):
        if drawn:
            self.stream.write(f"\x1b[{drawn}F\x1b[J")
        self.stream.write("\n".join(rows) + "\n")
        self.stream.flush()
        return len(rows)

    def _say(self, text):
        if text:
            print(text, file=self.stream, flush=True)
