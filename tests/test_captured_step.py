"""CapturedStep's bookkeeping on the CPU, with a stand-in for CuPy's streams and graphs.

A real capture records kernels without running them, and a replay runs them again on the same buffers. The
stand-in does the same with NumPy: begin_capture / end_capture undo whatever the captured Python run changed
(nothing executes during a real capture), and launch() runs StaticStep.run again, writing the stats the
capture returned in place, as a replay overwrites them. What this checks without a GPU:
- the warm-up run before the capture, and the restoring of parameters and Adam's moments after it;
- a fresh run, whose Adam moments must exist before the capture copies them (a bug found in review);
- a short last batch with its own StaticStep and graph, sharing the networks;
- every step's inputs written before its replay;
and all of it bit for bit against the ordinary step. tests/test_gpu.py checks the real thing on a GPU.
"""
import contextlib
import json
import sys
import types

import numpy as np
import pytest

import kernels
import refnet
from jointvae.models.specs import validate_spec
from jointvae.training import captured_step
from jointvae.training.trainer import Trainer

from test_static_step import IMAGES, SPECS   # the same runs as the NumPy check of the fixed buffers


def stand_in_cupy():
    """A module with what captured_step.py uses of cupy: Stream (capture), MemoryPool, using_allocator."""
    capturing, freed = {}, []

    class Graph:
        def __init__(self, static, stats):
            self.static, self.stats = static, stats

        def launch(self, stream):
            with refnet.use_ops(kernels.OPS):
                replayed = self.static.run()
            # A replay overwrites the memory of the stats the capture returned; NumPy's reductions give
            # scalars, not arrays, so the stand-in overwrites the entries of that same dict.
            self.stats.update(replayed)

    class Stream:
        def __init__(self, non_blocking=False):
            self.static = None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def synchronize(self):
            pass

        def begin_capture(self):
            networks = capturing["static"].networks.values()
            capturing["saved"] = [(n.params.copy(), n.optimizer.flat_m.copy(), n.optimizer.flat_v.copy())
                                  for n in networks]

        def end_capture(self):   # nothing ran during a real capture: undo what the Python run did
            static = capturing["static"]
            for n, (params, m, v) in zip(static.networks.values(), capturing["saved"]):
                n.params[...], n.optimizer.flat_m[...], n.optimizer.flat_v[...] = params, m, v
            return Graph(static, capturing["stats"])

    default_stream = types.SimpleNamespace(ptr=0)   # a run alone: CapturedStep makes a stream of its own
    cuda = types.SimpleNamespace(Stream=Stream, get_current_stream=lambda: default_stream,
                                 MemoryPool=lambda: types.SimpleNamespace(malloc=None,
                                                                          free_all_blocks=lambda: freed.append(1),
                                                                          used_bytes=lambda: 0),
                                 freed=freed,   # a record of the pools freed, for the test of close()
                                 using_allocator=lambda malloc: contextlib.nullcontext())
    return types.SimpleNamespace(cuda=cuda), capturing


@pytest.fixture
def fake_graphs(monkeypatch):
    cupy, capturing = stand_in_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    capture = captured_step.CapturedStep._capture

    def recording_capture(self):
        capturing["static"] = self.static
        run = self.static.run

        def run_and_keep_stats():   # the capture's run: its stats are the arrays replays write
            capturing["stats"] = run()
            return capturing["stats"]
        self.static.run = run_and_keep_stats
        try:
            capture(self)
        finally:
            del self.static.run
    monkeypatch.setattr(captured_step.CapturedStep, "_capture", recording_capture)


def train(tmp_path, model_name, graph, steps=7):
    trainer = Trainer(validate_spec(SPECS[model_name]), str(tmp_path / f"{model_name}-{graph}"), max_steps=steps,
                      seed=3, images=IMAGES, checkpoint_every=10**6, log=lambda line: None, buffered=graph)
    trainer.graph = graph   # the CPU Trainer never asks for a graph; the stand-in makes one possible
    trainer.run()
    params = dict(trainer.model.params)
    if trainer.discriminator is not None:
        params.update({f"D.{k}": v for k, v in trainer.discriminator.params.items()})
    with open(tmp_path / f"{model_name}-{graph}" / "log.jsonl") as f:
        losses = [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in f]
    return losses, params, trainer


@pytest.mark.parametrize("model_name", sorted(SPECS))
def test_captured_step_equals_the_ordinary_step(fake_graphs, tmp_path, model_name):
    losses, params, _ = train(tmp_path, model_name, graph=False)
    graph_losses, graph_params, trainer = train(tmp_path, model_name, graph=True)
    assert sorted(type(s).__name__ for s in trainer._buffered_steps.values()) == ["CapturedStep"] * 2   # 16 and 8
    assert graph_losses == losses and len(losses) == 7
    for name, value in params.items():
        np.testing.assert_array_equal(graph_params[name], value, err_msg=name)


def test_close_frees_every_graph_and_a_next_step_captures_again(fake_graphs, tmp_path):
    """Trainer.close (what a sweep's run does when it ends, beside other runs' captures): each graph's pool is
    freed, and training that goes on captures anew, with the same numbers as a run never closed."""
    _, params, _ = train(tmp_path, "jointvae", graph=False, steps=7)
    trainer = Trainer(validate_spec(SPECS["jointvae"]), str(tmp_path / "closed"), max_steps=3, seed=3, images=IMAGES,
                      checkpoint_every=10**6, log=lambda line: None, buffered=True)
    trainer.graph = True
    trainer.run()
    captured = list(trainer._buffered_steps.values())
    trainer.close()
    assert trainer._buffered_steps == {} and all(step.graph is None for step in captured)
    assert len(sys.modules["cupy"].cuda.freed) == len(captured)
    trainer.max_steps = trainer.epochs = 7
    trainer.run()
    for name, value in params.items():
        np.testing.assert_array_equal(trainer.model.params[name], value, err_msg=name)


def test_a_closed_pool_with_memory_in_use_is_kept_until_it_is_empty(monkeypatch):
    """A pool must not die while arrays of it live on (their later release would cudaFree outside the lock):
    close() keeps it among the retired pools, freeing it again at each close, until it holds nothing."""
    monkeypatch.setattr(captured_step, "_RETIRED_POOLS", [])

    class Pool:
        def __init__(self, used):
            self.used, self.frees = used, 0

        def free_all_blocks(self):
            self.frees += 1

        def used_bytes(self):
            return self.used

    def closed(pool):
        step = object.__new__(captured_step.CapturedStep)
        step.stream, step.pool, step.graph, step.stats = types.SimpleNamespace(synchronize=lambda: None), pool, 1, 1
        step.close()
        assert step.graph is None and step.stats is None

    held, empty = Pool(used=512), Pool(used=0)
    closed(held)
    assert captured_step._RETIRED_POOLS == [held] and held.frees == 1
    held.used = 0   # the arrays that held it are gone
    closed(empty)
    assert captured_step._RETIRED_POOLS == [] and held.frees == 2 and empty.frees == 1
