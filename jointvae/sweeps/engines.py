"""The engines a sweep runs on, by name: ENGINES[name](options) -> an object with run(tasks) -> {name: status}.

    local   LocalEngine (local.py): worker processes on this machine
    slurm   SlurmEngine (slurm.py, imported only when asked for): a SLURM job array

options: the front door's namespace (workers, log_dir, partition, time, gpus, array_parallelism).

The contract of an engine: run(tasks) runs every Task(name, argv) (argv: [python, "-m", "jointvae.sweep",
"run-one", SWEEP_FILE, NAME, maybe "--screen", STEPS], the whole of a point's work, idempotent) and returns when
they have ended, {name: exit status}; an attribute `stopped` (a signal number, else None) says the engine itself
was stopped. A screening sweep calls run twice: the screening runs, then the kept ones.
"""
from .local import LocalEngine, Task

__all__ = ["ENGINES", "EngineUnavailable", "LocalEngine", "Task", "make_engine"]


class EngineUnavailable(RuntimeError):
    """An engine this checkout cannot run: one line saying why."""


def _local(options):
    return LocalEngine(workers=getattr(options, "workers", None), log_dir=getattr(options, "log_dir", None),
                       gpus=getattr(options, "local_gpus", None) or 0, per_gpu=getattr(options, "per_gpu", None) or 1)


def _slurm(options):
    try:
        from .slurm import SlurmEngine
    except ImportError as e:
        if e.name in ("jointvae.sweeps.slurm", __package__ + ".slurm"):
            raise EngineUnavailable("--engine slurm: this checkout has no SLURM engine "
                                    "(jointvae/sweeps/slurm.py is missing); use --engine local") from None
        raise
    engine = SlurmEngine(partition=getattr(options, "partition", None), time_min=getattr(options, "time", None) or 60,
                         gpus=getattr(options, "gpus", None) or 0,
                         array_parallelism=getattr(options, "array_parallelism", None),
                         folder=getattr(options, "log_dir", None))   # submitit's logs beside the runs'
    return StatusesOfOutcomes(engine)


class StatusesOfOutcomes:
    """SlurmEngine.run returns one Outcome per task (its state, job id, message); a sweep wants the contract
    above, {name: exit status}. The SLURM engine is never stopped itself: its jobs are (and are requeued)."""

    def __init__(self, engine):
        self.engine, self.stopped = engine, None

    def run(self, tasks):
        return {o.name: (o.returncode if o.returncode is not None else 1) for o in self.engine.run(tasks)}


ENGINES = {"local": _local, "slurm": _slurm}


def make_engine(name, options):
    if name not in ENGINES:
        raise EngineUnavailable(f"--engine {name}: unknown engine (expected one of {', '.join(ENGINES)})")
    return ENGINES[name](options)
