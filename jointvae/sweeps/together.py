"""Several points of a sweep trained at once in one process, a thread each; on a GPU, a CUDA stream each.

    python -m jointvae.sweep run-one SWEEP NAME1 NAME2 ... [--device gpu]
    statuses = run_together(sweep, ["seed=0", "seed=1"], device="gpu")    # {name: exit status}

Why threads of one process: processes that share a GPU take turns on it (without NVIDIA's MPS, the GPU runs
the kernels of one process at a time), while the streams of one process can run their kernels side by side.
A batch of 64 leaves much of the GPU idle: on an H200 the MNIST step took 1.43 ms at batch 64 and 3.67 ms at
batch 256, four times the work in 2.6 times the time (docs/results.md). The host's share of a step (its noise,
one copy, one graph launch) holds the GIL; waiting for the device does not. How many steps per second K runs
at once give, threads against processes, is what bench/runs_together.py measures.

Each run is what it would be alone: run_one's work (train or resume, then evaluate), its own generators
from its seed, its own graphs captured on its stream from a memory pool of their own (captured_step.py),
its own folder and lock. On the CPU the runs are the same as alone too, bit for bit (tested), with one BLAS
thread each.

What must not happen while a run captures its graph (captured_step.py: DEVICE_LOCK) also shapes this file:
kernel modules load at once (CUDA_MODULE_LOADING=EAGER, set before CUDA starts, where the caller has not set it),
and no thread ends, which would destroy its CUDA handles, before every run has ended.

Signals: only the main thread can catch them. It holds the one StopSignals, and every run stops after its
current step with its checkpoint written, or ends its evaluation; the process then exits with 128 + the
signal, as a single run does. A run that fails is reported with its name and the others go on.
"""
import contextlib
import os
import threading
import traceback

from threadpoolctl import threadpool_limits

from ..training.stopping import StopSignals
from .runs import run_one
from .sweep_file import SweepError

EXPECTED_ERRORS = (SweepError, ValueError, RuntimeError, OSError)   # a one-line message; others: a traceback


def expected(error):
    """Our one-line errors; CuPy's (CUDARuntimeError is a RuntimeError) keep their traceback: where it failed."""
    return isinstance(error, EXPECTED_ERRORS) and not type(error).__module__.startswith(("cupy", "cupy_backends"))


def run_together(sweep, names, device=None, log=print):
    """run_one of every point in `names` at once, a thread each -> {name: exit status}: 0, 1 (an error, logged
    with the run's name) or 128 + the signal that stopped it."""
    if len(set(names)) != len(names):
        raise ValueError(f"a point is named twice: {' '.join(names)}")
    points = {name: sweep.point(name) for name in names}   # an unknown name: an error before anything runs
    os.environ.setdefault("CUDA_MODULE_LOADING", "EAGER")   # read when CUDA starts, in the first thread to use it
    statuses, lock = {}, threading.Lock()
    all_done = threading.Barrier(len(names))

    def log_line(line):   # one write per line: lines of two runs never merge
        with lock:
            log(line)
    # One BLAS limit for the whole process: threadpoolctl's limit is global, so a run's own limit, undone
    # when it ends, would otherwise change the BLAS threads of the runs still going.
    with StopSignals() as stop, threadpool_limits(limits=1, user_api="blas"):
        threads = [threading.Thread(target=_run_in_thread, name=name, daemon=True,
                                    args=(sweep, name, device or points[name].get("device", "cpu"), stop,
                                          statuses, log_line, all_done))
                   for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.25)    # with a timeout: the main thread must stay free to take the signals
    return {name: statuses.get(name, 1) for name in names}


def _run_in_thread(sweep, name, device, stop, statuses, log, all_done):
    def named(line):   # interleaved lines from several runs: each says whose it is
        log(line if line.startswith(f"{name}:") else f"{name}: {line}")
    stream = own_stream(device)   # kept to the end: destroying it, too, waits for the barrier
    try:
        with stream:
            statuses[name] = run_one(sweep, name, log=named, device=device, stop=stop)
    except Exception as e:
        named(f"error: {e}" if expected(e) else "failed:\n" + traceback.format_exc().rstrip())
        statuses[name] = 1
    finally:
        all_done.wait()   # the thread ends (its stream and CUDA handles go) once no run can be capturing


def own_stream(device):
    """On a GPU, a non-blocking CUDA stream made current for this thread: the run's copies, kernels and graph
    replays queue on it, apart from the other runs' (and from the default stream, which would order them)."""
    if device != "gpu":
        return contextlib.nullcontext()
    import cupy   # only a GPU run needs CuPy
    return cupy.cuda.Stream(non_blocking=True)


def combined_status(statuses):
    """One exit status for the process: a signal's 128 + n if a run was stopped, else 1 if one failed, else 0."""
    values = list(statuses.values())
    stopped = [v for v in values if v > 128]
    return stopped[0] if stopped else (1 if any(values) else 0)
