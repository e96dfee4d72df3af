"""The SLURM engine of a sweep: one job array through submitit, each task a command line run as a subprocess.

    engine = SlurmEngine(partition="gpu", time_min=240, gpus=1, array_parallelism=8)
    outcomes = engine.run(tasks)          # tasks: objects with .name and .argv (a command line)

`run` submits ONE job array (`executor.map_array`), waits for it and returns one `Outcome` per task, in order.
Each array element runs its task's argv as a subprocess. N seconds before the time limit SLURM sends
submitit's signal (`--signal=USR2@N`); submitit's handler calls `Job.checkpoint`, which sends the task SIGUSR1
(on which the trainer writes its checkpoint and exits 138), waits for it, and asks submitit to requeue the
same task. A preemption that requeues sends SIGTERM, on which the trainer checkpoints too. The requeued job runs the same argv, which must be
idempotent (train, or resume what is there): `python -m jointvae.sweep run-one SWEEP NAME` is.

submitit is the optional extra `[cluster]`; it is imported only when an engine is made.
"""
import collections
import os
import signal
import subprocess
import sys
import time

# What the task is sent to checkpoint and stop: the signal our trainer writes its checkpoint on.
TASK_STOP_SIGNAL = signal.SIGUSR1

Outcome = collections.namedtuple("Outcome", "name ok returncode job_id state message")


def _submitit():
    try:
        import submitit
    except ImportError:
        raise RuntimeError('the SLURM engine needs submitit: pip install ".[cluster]"') from None
    return submitit


def slurm_signal():
    """The signal SLURM sends a job before its time limit: submitit's (USR2 unless SUBMITIT_PREEMPT_SIGNAL)."""
    from submitit.slurm.slurm import SlurmJobEnvironment
    return getattr(signal, "SIG" + SlurmJobEnvironment.USR_SIG)


def descendants(pid):
    """pid and every process below it (read off /proc; just [pid] where there is none)."""
    children = collections.defaultdict(list)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pid]
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()   # after "pid (comm) ": state, ppid, ...
            if fields[0] != b"Z":
                children[int(fields[1])].append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:][:1] != b"Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


class Job:
    """One task as submitit runs it on a node: its argv as a subprocess, checkpointed and requeued on a signal.

    SLURM sends submitit's signal (USR2) to every process of the job step before the time limit. The task is
    started with that signal ignored, so that only this process hears it; submitit's handler then calls
    `checkpoint`, which sends the task (and the processes it started) SIGUSR1 exactly once, waits for it to
    write its checkpoint and exit, and hands submitit the same task to requeue. (Were the task sent the
    signal twice, the second one could end it while it writes its checkpoint.)

    Picklable (submitit pickles it to the job folder, and again on requeue): only the name, the argv and a
    grace period are kept; the subprocess handle lives in the running job alone.
    """

    def __init__(self, name, argv, grace_s=60):
        self.name, self.argv, self.grace_s = name, list(argv), grace_s
        self._proc = None

    def __getstate__(self):
        return {"name": self.name, "argv": self.argv, "grace_s": self.grace_s}

    def __setstate__(self, state):
        self.__dict__.update(state, _proc=None)

    def __call__(self):
        print(f"task {self.name}: {' '.join(self.argv)}", flush=True)
        heard = slurm_signal()
        deaf = heard not in (signal.SIGINT, signal.SIGTERM, TASK_STOP_SIGNAL)
        self._proc = subprocess.Popen(self.argv, preexec_fn=(lambda: signal.signal(heard, signal.SIG_IGN))
                                      if deaf else None)
        # poll, not wait(): the signal handler (checkpoint below) polls the same Popen, and Popen.wait holds a
        # lock while it blocks that the handler would then wait on forever.
        while self._proc.poll() is None:
            time.sleep(0.2)
        code = self._proc.returncode
        if code != 0:
            raise RuntimeError(f"task {self.name}: exit status {code}")
        return code

    def checkpoint(self, *args, **kwargs):
        """submitit calls this on SLURM's signal: let the task write its checkpoint, then requeue it."""
        submitit = _submitit()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            tree = descendants(proc.pid)
            if slurm_signal() != TASK_STOP_SIGNAL:   # else SLURM has sent it to the task already
                for pid in tree:
                    try:
                        os.kill(pid, TASK_STOP_SIGNAL)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + self.grace_s
            while time.monotonic() < deadline and (proc.poll() is None or any(alive(p) for p in tree[1:])):
                time.sleep(0.2)
            print(f"task {self.name}: stopped with status {proc.poll()}; requeued to resume", flush=True)
        return submitit.helpers.DelayedSubmission(Job(self.name, self.argv, self.grace_s))


class SlurmEngine:
    """Runs a sweep's tasks as one SLURM job array through submitit.

    partition: SLURM partition (None: the cluster's default); time_min: each task's time limit in minutes
    (a task that needs longer is stopped, checkpointed and requeued, up to submitit's limit of 3 timeouts);
    gpus: GPUs per task; array_parallelism: tasks running at once (None: all); folder: submitit's logs and
    pickles (default: slurm-logs/ in the working directory). signal_delay_s: how long before the time limit
    the stop signal comes (submitit's default, 90 s); poll_s: how often `run` asks SLURM how the jobs are.
    """

    def __init__(self, partition=None, time_min=60, gpus=0, array_parallelism=None, folder=None,
                 signal_delay_s=90, poll_s=5.0, cpus_per_task=1):
        self._submitit = _submitit()
        if time_min < 1:
            raise ValueError(f"time_min must be >= 1, got {time_min}")
        if gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {gpus}")
        if array_parallelism is not None and array_parallelism < 1:
            raise ValueError(f"array_parallelism must be >= 1, got {array_parallelism}")
        self.partition, self.time_min, self.gpus = partition, int(time_min), int(gpus)
        self.array_parallelism, self.folder = array_parallelism, folder or "slurm-logs"
        self.signal_delay_s, self.poll_s, self.cpus_per_task = int(signal_delay_s), poll_s, int(cpus_per_task)

    def executor(self, count):
        """The submitit executor for an array of `count` tasks."""
        ex = self._submitit.AutoExecutor(folder=os.path.join(self.folder, "%j"), cluster="slurm")
        params = dict(timeout_min=self.time_min, cpus_per_task=self.cpus_per_task, tasks_per_node=1, nodes=1,
                      slurm_array_parallelism=self.array_parallelism or count,
                      slurm_signal_delay_s=self.signal_delay_s, slurm_additional_parameters={"requeue": True})
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        ex.update_parameters(**params)
        return ex

    def submit(self, tasks):
        """Submit the tasks as one job array; the submitit jobs, one per task, in order."""
        tasks = list(tasks)
        if not tasks:
            return []
        jobs_to_run = [Job(t.name, t.argv, grace_s=max(5, self.signal_delay_s - 10)) for t in tasks]
        ex = self.executor(len(tasks))
        with ex.batch():
            jobs = [ex.submit(job) for job in jobs_to_run]
        print(f"submitted {len(jobs)} task(s) as SLURM job array {jobs[0].job_id.split('_')[0]} "
              f"(logs in {self.folder})", flush=True)
        return jobs

    def wait(self, tasks, jobs, log=sys.stdout, timeout_s=None):
        """Wait for the jobs; one Outcome per task, each also printed as a line. TimeoutError after timeout_s."""
        outcomes = []
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for task, job in zip(tasks, jobs):
            while not job.done():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{task.name}: job {job.job_id} not done after {timeout_s} s ({job.state})")
                time.sleep(self.poll_s)
            try:
                job.result()
                outcome = Outcome(task.name, True, 0, job.job_id, job.state, "done")
            except Exception as e:   # submitit raises the job's error, or a FailedJobError of its own
                lines = [line.strip() for line in str(e).splitlines() if line.strip()]
                ours = [line for line in lines if f"task {task.name}:" in line]   # Job.__call__'s own error
                message = (ours or lines or [type(e).__name__])[-1]
                outcome = Outcome(task.name, False, None, job.job_id, job.state, message)
            print(f"{task.name}: {'done' if outcome.ok else 'FAILED'} (job {job.job_id}, {outcome.state})"
                  f"{'' if outcome.ok else ': ' + outcome.message}", file=log, flush=True)
            outcomes.append(outcome)
        return outcomes

    def run(self, tasks):
        """Submit all tasks as one array, wait for every one; one Outcome per task, in order."""
        tasks = list(tasks)
        return self.wait(tasks, self.submit(tasks))
