"""Stopping a run cleanly: on a signal, finish the step, write the checkpoint, say how to go on.

    with StopSignals() as stop:
        while training:
            step()
            if stop.received is not None:
                save_checkpoint()
                raise TrainingStopped(step, stop.received)

SIGINT is Ctrl-C; SIGTERM and SIGUSR1 are what schedulers (SLURM, Kubernetes) send before a time
limit or a preemption. The handlers only note the first signal; the loop acts on it between steps,
so a checkpoint is never cut in half and no step is lost. A second signal while the checkpoint is
written changes nothing. The process then exits with 128 + the signal's number (130 for SIGINT, 143
for SIGTERM), as a shell reports a process killed by it.
"""
import signal
import threading

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name))


class TrainingStopped(Exception):
    """Training stopped on a signal after `step` steps, its checkpoint written."""

    def __init__(self, step, signum):
        self.step, self.signum = step, signum
        super().__init__(f"stopped at step {step} by {signal.Signals(signum).name}")

    @property
    def exit_status(self):
        return 128 + int(self.signum)


class StopSignals:
    """A context in which SIGINT, SIGTERM and SIGUSR1 set `received` instead of ending the process.

    Only the main thread can install signal handlers; elsewhere (a run inside a worker thread) the
    context does nothing and the signals keep their usual effect.
    """

    def __init__(self):
        self.received = None
        self._previous = {}

    def _note(self, signum, frame):
        if self.received is None:
            self.received = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._note) for s in SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False
