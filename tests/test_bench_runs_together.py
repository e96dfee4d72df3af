"""bench/runs_together.py on the CPU: K runs in threads and in processes give a table; a run that fails stops the
measurement with its own error (not the barrier's); the table says how many runs fit in a call."""
import json

import pytest

from bench import runs_together


def test_the_table_of_runs_together(tmp_path, capsys):
    path = tmp_path / "table.json"
    runs_together.main(["--counts", "1", "2", "--steps", "3", "--warmup", "3", "--json", str(path)])
    rows = json.loads(path.read_text())["rows"]
    assert [(r["mode"], r["count"]) for r in rows] == [("threads", 1), ("threads", 2), ("processes", 1),
                                                       ("processes", 2)]
    assert all(r["rate"] > 0 and r["per_run"] == pytest.approx(r["rate"] / r["count"]) for r in rows)
    out = capsys.readouterr().out
    assert "speed-up" in out and "1.00x" in out


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_failing_run_is_the_error_and_nobody_waits_for_ever(monkeypatch, mode):
    if mode == "threads":   # run 1 fails while run 0 waits at the barrier: run 1's error is the one raised
        class FailingTrainer(runs_together.Trainer):
            def load_data(self):
                if self.seed == 1:
                    raise OSError("run 1 cannot read its images")
                super().load_data()
        monkeypatch.setattr(runs_together, "Trainer", FailingTrainer)
        with pytest.raises(OSError, match="run 1 cannot read its images"):
            runs_together.time_together("mnist", "cpu", 2, mode, 3, 2)
    else:   # a spawned process imports the module afresh: an unknown spec name fails there
        with pytest.raises(RuntimeError, match="a run failed:(.|\n)*KeyError"):
            runs_together.time_together("no such spec", "cpu", 2, mode, 3, 2)


def test_runs_that_fit():
    rows = [{"count": 1, "mode": "threads", "rate": 800.0}, {"count": 4, "mode": "threads", "rate": 2400.0},
            {"count": 8, "mode": "threads", "rate": 2600.0}, {"count": 4, "mode": "processes", "rate": 800.0}]
    # 93,800 steps: 1 alone 147 s; 4 threads 186 s; 8 threads 319 s; 4 processes 499 s (+ 30 s each)
    assert runs_together.runs_that_fit(rows, 93800, 400) == (8, "threads")
    assert runs_together.runs_that_fit(rows, 93800, 300) == (4, "threads")
    assert runs_together.runs_that_fit(rows, 93800, 100) == (0, None)
    rows.append({"count": 4, "mode": "processes", "rate": 2500.0})   # the same K, faster: that mode
    assert runs_together.runs_that_fit(rows, 93800, 300) == (4, "processes")
