"""The SLURM engine on a real one-node SLURM cluster started for these tests (munged, slurmctld, slurmd).

The fixture writes a slurm.conf for this machine into a temporary folder (no cgroups, linuxproc process
tracking, everything under the folder, its own munge socket and key) and starts the daemons as root. Where
they cannot start (not root, no binaries, a daemon exits) the tests skip and say why. Debian:
`apt-get install slurm-wlm munge`; the engine needs `pip install ".[cluster]"`.
"""
import collections
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parent.parent
Task = collections.namedtuple("Task", "name argv")
DAEMONS = ("munged", "slurmctld", "slurmd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


def find(name):
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)),
                                      None)


def slurm_conf(d, host, munge_socket):
    cpus = os.cpu_count() or 1
    return f"""\
ClusterName=jointvae-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={max(1, memory_mb() * 9 // 10)} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster(d):
    """Start munged, slurmctld and slurmd under d; (environment for clients, processes) or raise Skip."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("SLURM test cluster: needs root to start slurmd")
    missing = [n for n in DAEMONS + ("sbatch", "squeue", "scontrol", "sinfo") if find(n) is None]
    if missing:
        pytest.skip(f"SLURM test cluster: no {', '.join(missing)} (Debian: apt-get install slurm-wlm munge)")
    try:
        import submitit  # noqa: F401
    except ImportError:
        pytest.skip('SLURM test cluster: no submitit (pip install ".[cluster]")')
    for sub in ("state", "spool", "munge"):
        (d / sub).mkdir(parents=True)
    os.chmod(d / "munge", 0o700)
    key, sock = d / "munge" / "munge.key", d / "munge" / "munge.socket"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text(slurm_conf(d, host, sock))
    env = dict(os.environ, SLURM_CONF=str(conf))
    procs = []

    def fail(why, log=None):
        stop_cluster(procs)
        tail = ""
        if log is not None and Path(log).exists():
            tail = " | ".join(Path(log).read_text(errors="replace").strip().splitlines()[-3:])
        pytest.skip(f"SLURM test cluster: {why}{': ' + tail if tail else ''}")

    # -F: in the foreground, so that each daemon is our child, stopped by its pid.
    munged = [find("munged"), "-F", "--force", f"--socket={sock}", f"--key-file={key}",
              f"--pid-file={d}/munge/munged.pid", f"--log-file={d}/munge/munged.log", f"--seed-file={d}/munge/seed"]
    for name, argv, log in (("munged", munged, d / "munge" / "munged.log"),
                            ("slurmctld", [find("slurmctld"), "-D", "-i", "-f", str(conf)], d / "slurmctld.log"),
                            ("slurmd", [find("slurmd"), "-D", "-f", str(conf)], d / "slurmd.log")):
        out = open(d / f"{name}.out", "w")
        procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        time.sleep(0.5)
        if procs[-1].poll() is not None:
            fail(f"{name} exited with status {procs[-1].returncode}", log if Path(log).exists() else d / f"{name}.out")
        if name == "munged":
            deadline = time.monotonic() + 10
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name, p in zip(DAEMONS, procs):
            if p.poll() is not None:
                fail(f"{name} exited with status {p.returncode}", d / f"{name}.log" if name != "munged" else None)
        r = subprocess.run([find("sinfo"), "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() in ("idle", "mix"):
            return env, procs
        time.sleep(0.5)
    fail(f"the node did not come up within 30 s (sinfo: {r.stdout.strip() or r.stderr.strip()})", d / "slurmd.log")


def stop_cluster(procs):
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running one-node SLURM cluster: yields the environment its clients need (SLURM_CONF)."""
    d = tmp_path_factory.mktemp("slurm")
    t0 = time.monotonic()
    env, procs = start_cluster(d)
    print(f"\nSLURM test cluster up in {time.monotonic() - t0:.1f} s ({d})")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]   # submitit calls sbatch, squeue, sacct from this process
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        stop_cluster(procs)


def image_folder(d, count=64):
    import imageio.v2 as imageio
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        imageio.imwrite(d / f"{i:03d}.png", (rng.random((32, 32)) * 255).astype(np.uint8))
    return d


def train_or_resume(images, out, steps):
    """An idempotent command line, as a sweep's run-one is: train into out, or resume what is there."""
    new = [sys.executable, "-m", "jointvae.train", "folder", str(images), "--size", "32", "--channels", "1",
           "--batch-size", "16", "--steps", str(steps), "--out", str(out), "--no-pictures"]
    resume = [sys.executable, "-m", "jointvae.train", "folder", "--out", str(out), "--resume", "--no-pictures"]
    code = (f"import os, subprocess, sys; sys.exit(subprocess.call({resume!r} if "
            f"os.path.exists({str(out / 'checkpoint.npz')!r}) else {new!r}))")
    return [sys.executable, "-c", code]


def lines(path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def release_requeued(job_id, timeout=60):
    """Slurm holds a requeued job for about two minutes (Reason=BeginTime); start it now instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True)
        if r.stdout.split() == ["PENDING", "BeginTime"]:
            # not at once: slurmd refuses, for about a second, to launch a job whose previous run it has just
            # killed ("already killed, do not launch batch job"), and the job would be lost.
            time.sleep(3)
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} was not requeued within {timeout} s (squeue: {r.stdout.strip()})")


@pytest.fixture
def job_env(monkeypatch):
    """What the jobs inherit (sbatch exports this environment): the project importable, one BLAS thread."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")


def test_array_of_tasks_runs(slurm, tmp_path, job_env):
    from jointvae.sweeps.slurm import SlurmEngine
    images = image_folder(tmp_path / "images")
    tasks = [Task(f"echo-{i}", [sys.executable, "-c",
                                f"open({str(tmp_path / f'echo-{i}.txt')!r}, 'w').write('{i}')"]) for i in range(2)]
    tasks.append(Task("train", train_or_resume(images, tmp_path / "run", 40)))
    tasks.append(Task("fails", [sys.executable, "-c", "import sys; sys.exit(3)"]))
    t0 = time.monotonic()
    outcomes = SlurmEngine(partition="test", time_min=5, folder=str(tmp_path / "logs"), poll_s=0.5).run(tasks)
    print(f"array of {len(tasks)} tasks: {time.monotonic() - t0:.1f} s")
    assert [o.name for o in outcomes] == [t.name for t in tasks]
    assert [o.ok for o in outcomes] == [True, True, True, False], outcomes
    assert "3" in outcomes[-1].message
    assert len({o.job_id.split("_")[0] for o in outcomes}) == 1, "not one array"
    for i in range(2):
        assert (tmp_path / f"echo-{i}.txt").read_text() == str(i)
    assert (tmp_path / "run" / "weights.npz").exists()


def test_signalled_job_is_requeued_and_resumes_exactly(slurm, tmp_path, job_env):
    from jointvae.sweeps.slurm import SlurmEngine, slurm_signal
    images = image_folder(tmp_path / "images")
    steps = 400
    reference = tmp_path / "reference"
    subprocess.run(train_or_resume(images, reference, steps), check=True, capture_output=True)

    run = tmp_path / "run"
    engine = SlurmEngine(partition="test", time_min=5, folder=str(tmp_path / "logs"), poll_s=0.5,
                         signal_delay_s=30)
    t0 = time.monotonic()
    [job] = engine.submit([Task("train", train_or_resume(images, run, steps))])
    # Wait until training is under way (log.jsonl has a line every 50 steps: two lines), then send what SLURM
    # sends before a time limit: submitit's signal to the job's step processes.
    deadline = time.monotonic() + 60
    while len(lines(run / "log.jsonl")) < 2:
        assert time.monotonic() < deadline, "training did not start"
        assert not job.done(), job.state
        time.sleep(0.1)
    subprocess.run(["scancel", f"--signal={slurm_signal().name[3:]}", job.job_id], check=True)
    t_signal = time.monotonic() - t0
    release_requeued(job.job_id)
    [outcome] = engine.wait([Task("train", None)], [job], timeout_s=120)
    print(f"signalled at {t_signal:.1f} s; done at {time.monotonic() - t0:.1f} s")
    assert outcome.ok, outcome
    log = Path(job.paths.stdout).read_text(errors="replace") + Path(job.paths.stderr).read_text(errors="replace")
    assert "resuming" in log, log[-2000:]
    resumed_at = int(log.split("resuming ")[1].split("at step ")[1].split()[0])
    assert 50 <= resumed_at < steps, resumed_at
    print(f"stopped at step {resumed_at} of {steps}, requeued, resumed")
    assert "requeued" in log, log[-2000:]
    got, want = np.load(run / "weights.npz"), np.load(reference / "weights.npz")
    assert sorted(got.files) == sorted(want.files)
    for name in want.files:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_engine_needs_submitit_named(monkeypatch):
    """Without submitit: one line naming the extra. Importing jointvae never needs it."""
    monkeypatch.setitem(sys.modules, "submitit", None)
    from jointvae.sweeps.slurm import SlurmEngine
    with pytest.raises(RuntimeError, match=r'pip install "\.\[cluster\]"'):
        SlurmEngine()
    code = "import sys, jointvae, jointvae.sweeps.slurm; assert 'submitit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_job_is_picklable_without_its_process():
    import pickle
    from jointvae.sweeps.slurm import Job
    job = Job("a", ["true"], grace_s=5)
    job._proc = object()
    back = pickle.loads(pickle.dumps(job))
    assert (back.name, back.argv, back.grace_s, back._proc) == ("a", ["true"], 5, None)


def test_a_sweep_through_slurm_gives_the_local_engines_results(slurm, tmp_path, job_env, capsys):
    """`python -m jointvae.sweep run --engine slurm`: the same sweep as the local engine's, the same eval.json."""
    import json
    from jointvae import sweep
    image_folder(tmp_path / "img")
    results = {}
    for engine in ("local", "slurm"):
        table = {"base": "folder", "folder": "img", "out": f"runs-{engine}",
                 "settings": {"steps": 30, "batch_size": 16, "image_shape": [1, 32, 32]}, "grid": {"seed": [0, 1]}}
        path = tmp_path / f"sweep-{engine}.json"
        path.write_text(json.dumps(table))
        extra = ["--partition", "test", "--time", "5"] if engine == "slurm" else ["--workers", "2"]
        assert sweep.main(["run", str(path), "--engine", engine, *extra]) == 0
        results[engine] = {name: json.loads((tmp_path / f"runs-{engine}" / name / "eval.json").read_text())
                           for name in ("seed=0", "seed=1")}
    for name, local in results["local"].items():
        slurm_result = results["slurm"][name]
        for key in ("recon_loss", "kl_total", "images"):
            assert slurm_result[key] == local[key], (name, key)
    assert sweep.main(["collect", str(tmp_path / "sweep-slurm.json")]) == 0
    assert "recon_loss" in capsys.readouterr().out
