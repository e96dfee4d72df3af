"""python -m jointvae.sweep: sweep files (checked, expanded, stable names), the local engine end to end on a tiny
folder of images (a run stopped half-way and finished by running the sweep again), status, collect, screening."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import write_square_images
from jointvae import load_model, sweep as front_door
from jointvae.sweeps import runs
from jointvae.sweeps.sweep_file import SweepError, load_sweep, point_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def env(tmp_path, monkeypatch):
    return sweep_folder(tmp_path, monkeypatch)


def sweep_folder(tmp_path, monkeypatch):
    """A folder of 48 grey 32x32 PNGs (a bright square each) in tmp_path/img; the data cache in tmp_path."""
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    write_square_images(tmp_path / "img", 48)
    return tmp_path


def write_sweep(folder, name="sweep.json", steps=40, grid=None, **extra):
    table = {"base": "folder", "folder": "img", "out": "runs",
             "settings": {"steps": steps, "batch_size": 8, "image_shape": [1, 32, 32]},
             "grid": grid if grid is not None else [{"model": ["jointvae"], "seed": [0, 1]},
                                                    {"model": ["betavae"], "beta": [4.0], "seed": [0, 1]}],
             **extra}
    path = folder / name
    path.write_text(json.dumps(table))
    return path


def states(sweep):
    return {p["name"]: runs.state(sweep, p) for p in sweep.points}


def test_local_engine_end_to_end_with_a_run_stopped_half_way(env, capsys):
    path = write_sweep(env)
    sweep = load_sweep(path)
    names = [p["name"] for p in sweep.points]
    assert names == ["model=jointvae,seed=0", "model=jointvae,seed=1",
                     "beta=4.0,model=betavae,seed=0", "beta=4.0,model=betavae,seed=1"]
    assert all(s["state"] == "pending" for s in states(sweep).values())

    # One point started as the engines start it, stopped by SIGTERM once it trains: checkpoint, exit 143.
    victim = names[2]
    child = subprocess.Popen([sys.executable, "-m", "jointvae.sweep", "run-one", str(path), victim],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"})
    for line in child.stdout:
        if " step " in line and "/40 loss" in line:
            child.send_signal(signal.SIGTERM)
            break
    rest = child.stdout.read()
    assert child.wait(timeout=60) == 128 + signal.SIGTERM, rest
    assert "stopped at step" in rest and "checkpoint written" in rest
    half = runs.state(sweep, sweep.point(victim))
    assert half["state"] == "partial" and 0 < half["step"] < 40

    # The sweep trains the three others and resumes the stopped one.
    assert front_door.main(["run", str(path), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert all(s["state"] == "evaluated" and s["step"] == 40 for s in states(sweep).values()), states(sweep)
    with open(env / "runs" / "logs" / f"{victim}.log", encoding="utf-8") as f:
        assert f"resuming at step {half['step']}" in f.read()
    assert "done" in err
    assert json.load(open(env / "runs" / "sweep.json"))["points"][0]["name"] == names[0]
    evaluation = json.load(open(env / "runs" / names[0] / "eval.json"))
    assert evaluation["sweep_step"] == 40 and "recon_loss" in evaluation

    # Idempotent: nothing runs again.
    stamps = {n: os.path.getmtime(env / "runs" / n / "eval.json") for n in names}
    assert front_door.main(["run", str(path)]) == 0
    assert "4 of 4 run(s) already evaluated; 0 to run" in capsys.readouterr().out
    assert stamps == {n: os.path.getmtime(env / "runs" / n / "eval.json") for n in names}

    assert front_door.main(["status", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[-1] == "4 evaluated"
    assert all("evaluated" in line and "40/40" in line and "recon_loss" in line for line in lines[:4])

    assert front_door.main(["collect", str(path)]) == 0
    out, err = capsys.readouterr()
    table = out.splitlines()
    assert table[0] == "| beta | model | field | n | median | IQR | seed 0 | seed 1 |"
    assert len(table) == 4 and "| - | jointvae | recon_loss | 2 |" in table[2] and "| 4.0 | betavae |" in table[3]
    values = [evaluation["recon_loss"], json.load(open(env / "runs" / names[1] / "eval.json"))["recon_loss"]]
    assert f"{np.median(values):.4g}" in table[2] and f"{values[0]:.4g}" in table[2]
    assert (env / "runs" / "collect.csv").read_text().splitlines()[0] == "beta,model,field,n,median,IQR,seed 0,seed 1"
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed" in err and not (env / "runs" / "collect.png").exists()
    else:
        assert (env / "runs" / "collect.png").exists()


def test_screening_keeps_the_best_by_a_training_split_field(env, capsys):
    path = write_sweep(env, steps=20, grid={"lr": [1e-3, 1e-4, 1e-6]})
    assert front_door.main(["run", str(path), "--workers", "2", "--screen", "10", "--keep", "1",
                            "--select", "recon_loss"]) == 0
    out = capsys.readouterr().out
    sweep = load_sweep(path)
    record = json.load(open(env / "runs" / "screen.json"))
    screened = {p["name"]: json.load(open(env / "runs" / p["name"] / "screen.json")) for p in sweep.points}
    best = min(screened, key=lambda n: screened[n]["recon_loss"])
    assert record["kept"] == [best] and record["split"] == "train" and record["direction"] == "min"
    assert all(s["sweep_step"] == 10 and s["sweep_split"] == "train" for s in screened.values())
    assert "training split" in out and "never the test split" in out and "(no labels)" in out
    assert f"kept    {best}" in out
    for name, s in states(sweep).items():
        assert (s["state"], s["step"]) == (("evaluated", 20) if name == best else ("partial", 10))
    assert front_door.main(["status", str(path)]) == 0
    assert "2 screened-out" in capsys.readouterr().out.splitlines()[-1]


def test_screening_and_evaluation_ask_evaluate_for_the_right_split(env, monkeypatch):
    """MNIST-like data: the screen scores --split train, the final evaluation the sweep's split (test)."""
    path = env / "mnist.json"
    path.write_text(json.dumps({"base": "mnist", "out": "runs", "settings": {"steps": 5}, "grid": {"seed": [0]}}))
    sweep = load_sweep(path)
    seen = []

    class Child:
        returncode = 0

        def __init__(self, argv, **kwargs):
            seen.append(argv)

        def communicate(self, timeout=None):
            return '{"recon_loss": 1.0}\n', None

        def poll(self):
            return 0

    monkeypatch.setattr(runs.subprocess, "Popen", Child)
    point = sweep.points[0]
    assert runs.evaluate(sweep, point, "train")["sweep_split"] == "train"
    assert runs.evaluate(sweep, point)["sweep_split"] == "test"
    assert seen[0][-2:] == ["--split", "train"] and seen[1][-2:] == ["--split", "test"]
    runs.evaluate(sweep, dict(point, device="gpu"))   # a run trained on a GPU is scored there
    assert seen[2][-4:] == ["--split", "test", "--device", "gpu"]


@pytest.mark.parametrize("change, field", [
    ({"colour": 1}, "unknown key 'colour'"),
    ({"grid": {"seed": 3}}, "grid.seed must be a non-empty list"),
    ({"grid": {"learning_rate": [1]}}, "grid.learning_rate: unknown key"),
    ({"grid": [{"seed": [0]}, {"batch-size": [0]}]}, "point batch_size=0: batch_size must be an integer"),
    ({"settings": {"batch_size": 8}}, "steps: every point needs 'steps'"),
    ({"settings": {"steps": -1}}, "steps must be an integer"),
    ({"grid": {"model": ["factorvae"]}}, "point model=factorvae: model 'factorvae' needs 'tc_gamma'"),
    ({"grid": {"model": ["gan"]}}, "model: unknown model 'gan'"),
    ({"base": "nosuch.json"}, "base: 'nosuch.json' is neither a dataset"),
    ({"folder": "missing"}, "folder: folder needs an existing image folder"),
    ({"evaluate": {"split": "validation"}}, "evaluate.split must be"),
])
def test_bad_sweep_files_are_one_line_errors_naming_the_file_and_field(env, change, field):
    path = write_sweep(env, steps=5, grid={"seed": [0]})
    table = {**json.loads(path.read_text()), **change}
    if "settings" in change:
        table["settings"] = {"image_shape": [1, 32, 32], **change["settings"]}
    path.write_text(json.dumps(table))
    with pytest.raises(SystemExit) as e:
        front_door.main(["status", str(path)])
    message = str(e.value)
    assert message.startswith(f"error: {path}: ") and field in message and "\n" not in message, message


def test_file_formats_and_stable_names(env):
    (env / "a.toml").write_text('base = "folder"\nfolder = "img"\nout = "runs"\n[settings]\nsteps = 5\n'
                                'image_shape = [1, 32, 32]\n[grid]\nseed = [0, 1]\nlr = [0.001, 1e-05]\n'
                                'cont_capacity = [[0.0, 5.0, 100, 30.0]]\n')
    (env / "b.json").write_text(json.dumps({"grid": {"cont_capacity": [[0.0, 5.0, 100, 30.0]], "lr": [0.001, 1e-05],
                                                     "seed": [0, 1]}, "out": "runs", "base": "folder",
                                            "folder": "img", "settings": {"steps": 5, "image_shape": [1, 32, 32]}}))
    a, b = load_sweep(env / "a.toml"), load_sweep(env / "b.json")
    assert sorted(p["name"] for p in a.points) == sorted(p["name"] for p in b.points)
    assert "cont_capacity=0.0_5.0_100_30.0,lr=1e-05,seed=1" in a.by_name
    assert a.by_name["cont_capacity=0.0_5.0_100_30.0,lr=0.001,seed=0"]["spec"]["lr"] == [0.001]
    assert point_name({"seed": 0, "beta": 4.0}) == point_name({"beta": 4.0, "seed": 0}) == "beta=4.0,seed=0"
    (env / "bad.toml").write_text("base = \n")
    with pytest.raises(SweepError, match=r"bad\.toml: not valid TOML"):
        load_sweep(env / "bad.toml")


@pytest.mark.skipif(importlib.util.find_spec("jointvae.sweeps.slurm") is not None, reason="the SLURM engine is here")
def test_a_missing_slurm_engine_is_one_line(env):
    path = write_sweep(env, steps=5, grid={"seed": [0]})
    with pytest.raises(SystemExit, match="^error: --engine slurm: this checkout has no SLURM engine"):
        front_door.main(["run", str(path), "--engine", "slurm"])


def test_stopping_the_engine_stops_every_worker_at_a_checkpoint(env, capsys):
    """SIGTERM to `sweep run`: each worker writes its checkpoint, the sweep exits 143; running it again finishes."""
    path = write_sweep(env, steps=400, grid={"seed": [0, 1]})
    engine = subprocess.Popen([sys.executable, "-m", "jointvae.sweep", "run", str(path), "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    logs = [env / "runs" / "logs" / f"seed={s}.log" for s in (0, 1)]
    deadline = time.monotonic() + 60
    while not all(log.exists() and "/400 loss" in log.read_text() for log in logs):
        assert engine.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    engine.send_signal(signal.SIGTERM)
    _, err = engine.communicate(timeout=60)
    assert engine.returncode == 128 + signal.SIGTERM, err
    assert "stopping the running tasks" in err and "again to finish" in err
    sweep = load_sweep(path)
    assert all(s["state"] == "partial" and 0 < s["step"] < 400 for s in states(sweep).values()), states(sweep)
    assert front_door.main(["run", str(path)]) == 0
    assert all(s["state"] == "evaluated" for s in states(sweep).values())


def test_local_engine_gives_each_gpu_its_processes(tmp_path):
    """--local-gpus 2 --per-gpu 2: four workers, each child sees one GPU (CUDA_VISIBLE_DEVICES), two per GPU."""
    from jointvae.sweeps.local import LocalEngine, Task
    script = ("import os, sys, time; time.sleep(0.3); "
              "open(sys.argv[1], 'w').write(os.environ.get('CUDA_VISIBLE_DEVICES', 'none'))")
    tasks = [Task(f"t{i}", [sys.executable, "-c", script, str(tmp_path / f"t{i}")]) for i in range(8)]
    engine = LocalEngine(gpus=2, per_gpu=2, refresh=0.05, stream=open(os.devnull, "w"))
    assert engine.workers == 4
    assert engine.run(tasks) == {f"t{i}": 0 for i in range(8)}
    seen = [(tmp_path / f"t{i}").read_text() for i in range(8)]
    assert sorted(seen) == ["0"] * 4 + ["1"] * 4


def test_device_is_a_training_setting(env):
    assert load_sweep(write_sweep(env, grid={"seed": [0], "device": ["gpu"]})).points[0]["device"] == "gpu"
    with pytest.raises(SweepError, match="device must be one of cpu, gpu"):
        load_sweep(write_sweep(env, name="bad.json", grid={"seed": [0], "device": ["tpu"]}))


def fake_finished_runs(sweep, scores):
    """Each point's run folder as a finished, evaluated run would leave it: a model (random weights) and an
    eval.json with the given fields ({name: {field: value}})."""
    from jointvae import JointVAE, save_model
    for i, point in enumerate(sweep.points):
        folder = runs.run_dir(sweep, point["name"])
        model = JointVAE((1, 32, 32), point["spec"]["latent_spec"], rng=np.random.default_rng(i))
        save_model(folder, model, point["spec"])
        runs.write_json(os.path.join(folder, "eval.json"), {"sweep_step": point["steps"], **scores[point["name"]]})


def test_export_writes_the_best_run_of_each_setting(env, capsys):
    path = write_sweep(env, grid=[{"model": ["jointvae", "betavae"], "seed": [0, 1, 2]}])
    sweep = load_sweep(path)
    metric = {"model=jointvae,seed=0": float("nan"), "model=jointvae,seed=1": 0.9, "model=jointvae,seed=2": 0.9,
              "model=betavae,seed=0": 0.7, "model=betavae,seed=1": 0.6, "model=betavae,seed=2": 0.8}
    fake_finished_runs(sweep, {n: {"factorvae": v, "recon_loss": 100 - 10 * v} for n, v in metric.items()})
    dest = env / "pretrained"
    assert front_door.main(["export", str(path), "--best", "factorvae", "--to", str(dest),
                            "--prefix", "toy"]) == 0
    err = capsys.readouterr().err
    assert sorted(os.listdir(dest)) == ["toy-betavae", "toy-jointvae"]   # no half-built folder left behind
    assert "model=jointvae: seed 1 (factorvae 0.9)" in err        # a tie goes to the lowest seed; NaN never wins
    assert "model=betavae: seed 2 (factorvae 0.8)" in err
    best = dest / "toy-betavae"
    assert {"specs.json", "weights.npz", "eval.json", "README.md", "reconstructions.png",
            "traversal_cont.png"} <= set(os.listdir(best))
    assert load_model(best).latent_spec == sweep.point("model=betavae,seed=2")["spec"]["latent_spec"]
    with np.load(best / "weights.npz") as exported, \
            np.load(os.path.join(runs.run_dir(sweep, "model=betavae,seed=2"), "weights.npz")) as trained:
        assert exported.files == trained.files and all(np.array_equal(exported[k], trained[k]) for k in exported)
    readme = (best / "README.md").read_text()
    assert "| `model=betavae,seed=2` (this one) | 2 | 0.8 | 92 |" in readme
    assert "| `model=betavae,seed=1` | 1 | 0.6 | 94 |" in readme

    # Lower is better for a loss; an existing folder is kept unless --force, and replaced whole with it.
    with pytest.raises(SystemExit, match="toy-jointvae exists"):
        front_door.main(["export", str(path), "--best", "recon_loss", "--to", str(dest), "--prefix", "toy",
                         "--no-pictures"])
    assert front_door.main(["export", str(path), "--best", "recon_loss", "--to", str(dest), "--prefix", "toy",
                            "--no-pictures", "--force"]) == 0
    assert "model=betavae: seed 2 (recon_loss 92)" in capsys.readouterr().err
    assert sorted(os.listdir(dest)) == ["toy-betavae", "toy-jointvae"]
    assert "reconstructions.png" not in os.listdir(best)
    with pytest.raises(SystemExit, match="no evaluated run .* has the field 'mig'"):
        front_door.main(["export", str(path), "--best", "mig", "--to", str(dest)])


def test_collect_scatter_has_a_dot_per_run(env, capsys):
    from jointvae.sweeps.collect import scatter_points
    path = write_sweep(env, grid=[{"model": ["jointvae", "betavae"], "seed": [0, 1]}])
    sweep = load_sweep(path)
    fake_finished_runs(sweep, {p["name"]: {"recon_loss": 50.0 + i, "factorvae": 0.1 * i}
                               for i, p in enumerate(sweep.points)})
    os.remove(os.path.join(runs.run_dir(sweep, "model=betavae,seed=1"), "eval.json"))   # not evaluated yet
    assert scatter_points(sweep, "recon_loss", "factorvae") == {
        "model=jointvae": [(50.0, 0.0, 0), (51.0, 0.1, 1)], "model=betavae": [(52.0, 0.2, 0)]}
    assert front_door.main(["collect", str(path), "--scatter", "recon_loss", "factorvae"]) == 0
    err = capsys.readouterr().err
    if importlib.util.find_spec("matplotlib") is not None:
        assert (env / "runs" / "collect-scatter.png").exists() and "collect-scatter.png" in err


def test_collect_scatter_takes_reference_points_and_refuses_bad_ones(env, monkeypatch):
    from jointvae.sweeps import collect as collect_module
    path = write_sweep(env, grid=[{"model": ["betavae"], "seed": [0]}])
    sweep = load_sweep(path)
    fake_finished_runs(sweep, {p["name"]: {"recon_loss": 50.0, "factorvae": 0.5} for p in sweep.points})
    drawn = []
    monkeypatch.setattr(collect_module, "scatter", lambda path, sweep, x, y, by, references: drawn.append(references))
    scatter = ["--scatter", "recon_loss", "factorvae"]
    assert front_door.main(["collect", str(path), *scatter, "--reference", "a paper", "45", "0.82",
                            "--reference", "a model", "34", "0.86"]) == 0
    assert drawn == [[("a paper", 45.0, 0.82), ("a model", 34.0, 0.86)]]     # as numbers, in order
    for bad, why in ((["--reference", "p", "45", "high"], "X and Y must be numbers, got '45' and 'high'"),
                     (["--reference", "p", "nan", "0.8"], "X and Y must be finite"),
                     (["--reference", "p", "45", "inf"], "X and Y must be finite")):
        with pytest.raises(SystemExit, match=why):
            front_door.main(["collect", str(path), *scatter, *bad])
    with pytest.raises(SystemExit, match="--reference goes with --scatter"):
        front_door.main(["collect", str(path), "--reference", "p", "45", "0.8"])


def test_scatter_draws_each_reference_as_a_labelled_star(env, tmp_path):
    pytest.importorskip("matplotlib")
    from jointvae.sweeps import collect as collect_module
    path = write_sweep(env, grid=[{"model": ["betavae"], "seed": [0]}])
    sweep = load_sweep(path)
    fake_finished_runs(sweep, {p["name"]: {"recon_loss": 50.0, "factorvae": 0.5} for p in sweep.points})
    drawn = {}
    plt = collect_module._pyplot()
    real_savefig = plt.Figure.savefig

    def keep_axes(fig, *args, **kwargs):   # read what was drawn before the figure is closed
        ax = fig.axes[0]
        drawn["labels"] = (ax.get_xlabel(), ax.get_ylabel())
        drawn["notes"] = [t.get_text() for t in ax.texts]
        drawn["stars"] = [c.get_offsets().tolist() for c in ax.collections][1:]
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = keep_axes
    try:
        collect_module.scatter(str(tmp_path / "s.png"), sweep, "recon_loss", "factorvae",
                               references=[("a paper", 45.0, 0.82)])
    finally:
        plt.Figure.savefig = real_savefig
    assert drawn["labels"] == ("reconstruction error (BCE summed over pixels)", "FactorVAE metric")
    assert "a paper" in drawn["notes"] and drawn["stars"] == [[[45.0, 0.82]]]
    with pytest.raises(ValueError, match="reference 'a paper': X and Y must be finite"):
        collect_module.scatter(str(tmp_path / "s.png"), sweep, "recon_loss", "factorvae",
                               references=[("a paper", float("nan"), 0.82)])


def test_the_live_table_gives_each_running_run_its_rate_and_eta(tmp_path):
    from jointvae.sweeps.engines import Task
    from jointvae.sweeps.local import LocalEngine
    engine = LocalEngine(log_dir=str(tmp_path), stream=open(os.devnull, "w"))
    (tmp_path / "a.log").write_text("epoch 1/9 step 10/100 loss 5.0 recon 4.0 2.50 steps/s ETA 0m36s\n"
                                    "epoch 1/9 step 20/100 loss 4.5 recon 3.9 3.25 steps/s ETA 0m25s\n")
    (tmp_path / "b.log").write_text("epoch 9/9 step 100/100 loss 1.0 recon 0.5 3.00 steps/s ETA 0m00s\n")
    rows = engine._table([Task("a", []), Task("b", []), Task("c", [])], running={"a": None}, done={"b": 0},
                         started={"a": time.monotonic(), "b": time.monotonic()})
    assert rows[0].split()[-2:] == ["steps/s", "ETA"]
    assert rows[1].split()[1:4] == ["running", "20/100", "4.5"] and rows[1].split()[-2:] == ["3.25", "0m25s"]
    assert rows[2].split()[1:4] == ["done", "100/100", "1.0"] and "steps/s" not in rows[2] and rows[2].split()[-1] == "1.0"
    assert rows[3].split() == ["c", "queued"] and rows[-1] == "1 done, 1 queued, 1 running"


def test_collect_writes_each_runs_kl_per_unit_and_a_histogram(env, capsys):
    from jointvae.sweeps.collect import unit_table
    path = write_sweep(env, grid=[{"init": ["pytorch", "pytorch-0.4"], "seed": [0, 1, 2]}])
    sweep = load_sweep(path)
    fake_finished_runs(sweep, {p["name"]: {"discrete_accuracy": 0.6 + 0.05 * i, "kl_total": 3.5,
                                           "kl_per_unit_ranked": [{"unit": "cont.2", "kl": 2.0},
                                                                  {"unit": "disc.0", "kl": 1.5}]}
                               for i, p in enumerate(sweep.points)})
    table = unit_table(sweep).splitlines()
    assert len(table) == 2 + 6 and table[2] == "| init=pytorch,seed=0 | 3.5 | cont.2 2, disc.0 1.5 |"
    assert front_door.main(["collect", str(path), "--by", "init", "--fields", "discrete_accuracy",
                            "--hist", "discrete_accuracy"]) == 0
    err = capsys.readouterr().err
    assert (env / "runs" / "collect-units.md").read_text().splitlines() == table
    if importlib.util.find_spec("matplotlib") is not None:
        assert (env / "runs" / "collect-hist.png").exists() and "collect-hist.png" in err
    else:
        assert "no histogram" in err


def test_collect_and_export_refuse_what_they_cannot_tell_apart(env, capsys):
    from jointvae.sweeps.collect import gather
    from jointvae.sweeps.export import folder_name
    path = write_sweep(env, grid=[{"model": ["jointvae"], "lr": [0.001, 0.002], "seed": [0, 1]}])
    sweep = load_sweep(path)
    values = {"lr=0.001,model=jointvae,seed=0": 1.0, "lr=0.001,model=jointvae,seed=1": float("nan"),
              "lr=0.002,model=jointvae,seed=0": 3.0, "lr=0.002,model=jointvae,seed=1": 5.0}
    fake_finished_runs(sweep, {n: {"recon_loss": v} for n, v in values.items()})
    _, _, rows = gather(sweep, ["recon_loss"], ["lr"])
    assert [(r["n"], r["median"]) for r in rows] == [(1, 1.0), (2, 4.0)]   # a diverged run is not in the median
    assert np.isnan(rows[0]["seeds"][1])
    with pytest.raises(ValueError, match="several runs of one seed in the setting model=jointvae"):
        gather(sweep, ["recon_loss"], ["model"])
    with pytest.raises(SystemExit, match="--by lrr: no point"):
        front_door.main(["collect", str(path), "--by", "lrr"])
    # An eval.json of an earlier, shorter run of the point is not its result.
    runs.write_json(os.path.join(runs.run_dir(sweep, "lr=0.002,model=jointvae,seed=1"), "eval.json"),
                    {"sweep_step": 20, "recon_loss": 0.5})
    assert "lr=0.002,model=jointvae,seed=1" not in runs.load_results(sweep)
    # Folder names are never a path, and never empty.
    assert folder_name("../x", {"model": "a/b"}) == "x-a-b"
    with pytest.raises(ValueError, match="pass --prefix"):
        folder_name("", {})
    with pytest.raises(ValueError, match="pass --prefix"):
        folder_name("", {"v": ".."})


def test_a_finished_run_whose_weights_were_lost_is_reported_not_retrained_and_not_exported(env, capsys):
    """A machine gone with a run's weights: its committed eval.json and specs.json still make it a finished run."""
    path = write_sweep(env, grid=[{"model": ["betavae"], "seed": [0, 1]}])
    sweep = load_sweep(path)
    fake_finished_runs(sweep, {"model=betavae,seed=0": {"factorvae": 0.6}, "model=betavae,seed=1": {"factorvae": 0.4}})
    lost = runs.run_dir(sweep, "model=betavae,seed=1")
    os.remove(os.path.join(lost, "weights.npz"))
    assert runs.state(sweep, sweep.point("model=betavae,seed=1"))["state"] == "evaluated"
    assert not runs.weights_kept(lost) and runs.weights_kept(runs.run_dir(sweep, "model=betavae,seed=0"))
    assert runs.run_one(sweep, "model=betavae,seed=1", log=lambda line: None) == 0   # not trained again
    assert sorted(os.listdir(lost)) == ["eval.json", "specs.json"]
    assert set(runs.load_results(sweep)) == {"model=betavae,seed=0", "model=betavae,seed=1"}   # both in the table
    dest = env / "pretrained"
    assert front_door.main(["export", str(path), "--best", "factorvae", "--to", str(dest), "--no-pictures"]) == 0
    with pytest.raises(SystemExit, match="the best run model=betavae,seed=1 has no weights.npz"):
        front_door.main(["export", str(path), "--best", "min:factorvae", "--to", str(dest), "--force"])
    assert os.path.exists(dest / "betavae" / "weights.npz")   # the folder exported before is kept
    # Without specs.json a folder is not a finished run: that one is trained (pending).
    os.remove(os.path.join(lost, "specs.json"))
    assert runs.state(sweep, sweep.point("model=betavae,seed=1"))["state"] == "pending"


def test_status_gives_a_partial_run_its_rate_and_time_to_go_and_says_when_its_codes_collapsed(env, capsys):
    path = write_sweep(env, grid=[{"model": ["jointvae"], "seed": [0, 1]}])
    sweep = load_sweep(path)
    spreads = {"model=jointvae,seed=0": 0.5, "model=jointvae,seed=1": 2e-6}
    for name, walls in (("model=jointvae,seed=0", (5.0, 7.0)), ("model=jointvae,seed=1", (9.0, 1.0))):
        folder = runs.run_dir(sweep, name)
        os.makedirs(folder)
        np.savez(os.path.join(folder, "checkpoint.npz"), step=np.array(10))
        with open(os.path.join(folder, "log.jsonl"), "w") as f:
            f.write(json.dumps({"step": 10, "wall_s": walls[0], "loss": 3.0}) + "\n{half a line\n")
            f.write(json.dumps({"step": 20, "wall_s": walls[1], "loss": 2.5, "code_spread": spreads[name]}) + "\n")
    first, second = (runs.state(sweep, p) for p in sweep.points)
    assert first["rate"] == 5.0 and first["loss"] == 2.5 and first["state"] == "partial"
    assert second["rate"] is None          # the clock went back: a resume between the two records
    assert front_door.main(["status", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-5:] == ["5.00", "steps/s,", "6s", "to", "go"] and "steps/s" not in lines[1]
    assert "collapsed" not in lines[0] and lines[1].endswith("collapsed: one code for every image (code spread 2.0e-06)")
