"""bench's per-layer profile in a quick mode (no torch, no timing assertion): it runs and leaves nothing behind."""
import numpy as np

from refnet import conv


def test_profile_quick_mode_runs_and_unwraps(capsys, tmp_path):
    from bench import train_step
    from bench.layer_profile import leaf_layers, profile_step
    from jointvae.models.jointvae import JointVAE

    im2col, col2im = conv.im2col, conv.col2im
    assert train_step.main(["--profile", "--batch-sizes", "2", "--steps", "1", "--warmup", "0",
                            "--json", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert "per-layer profile, batch 2" in out and "of which col2im" in out and "features_to_img.4" in out
    assert conv.im2col is im2col and conv.col2im is col2im          # the module's functions are restored

    model = JointVAE((1, 32, 32), {"cont": 2}, rng=np.random.default_rng(0))
    x = np.zeros((2, 1, 32, 32), np.float32)
    rows, ms = profile_step(lambda: model.decode_forward(model.eval_code(model.encode(x))), model, 2, 1)
    assert all("forward" not in vars(layer) for _, layer in leaf_layers(model))   # wrappers removed
    conv_rows = [r for r in rows if r["kind"] == "Conv2d"]
    assert len(conv_rows) == 3 and all(r["forward_ms"] > 0 and r["backward_ms"] == 0 for r in conv_rows)
    assert ms > 0 and sum(r["share"] for r in rows if not r["layer"].startswith("of which")) <= 1.0 + 1e-9


def test_bench_quick_mode_prints_one_json_line_per_batch(capsys):
    """`python -m bench.train_step` in a quick mode: the JSON figure line with every key (no timing assertion)."""
    import json

    from bench import train_step
    train_step.main(["--batch", "2", "--steps", "1", "--warmup", "0", "--img", "64", "--threads", "1"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"ms_per_step", "ms_per_step_min", "ms_per_step_max", "images_per_s", "gflops", "peak_fraction",
            "peak_rss_mb"} <= set(line)
    assert line["img"] == 64 and line["batch"] == 2 and line["ms_per_step_min"] <= line["ms_per_step_max"]
    assert line["gflop_per_step"] > 0 and 0 < line["peak_fraction"]


def test_multiply_adds_of_the_mnist_model_match_a_hand_count():
    """2.1 GFLOP per step at batch 64 (the CPU-speed issue's figure): 3 x 2 x the forward multiply-adds."""
    from bench.throughput import forward_multiply_adds
    from jointvae.models.jointvae import JointVAE
    model = JointVAE((1, 32, 32), {"cont": 10, "disc": [10]}, rng=np.random.default_rng(0))
    x = np.zeros((64, 1, 32, 32), np.float32)
    macs = forward_multiply_adds(model, x.shape, lambda: model.decode_forward(model.eval_code(model.encode(x))))
    per_image = (16 * 16 * 32 * 1 * 16 + 8 * 8 * 64 * 32 * 16 + 4 * 4 * 64 * 64 * 16     # encoder convolutions
                 + 1024 * 256 + 3 * 256 * 10 + 20 * 256 + 256 * 1024                     # Linear layers
                 + 4 * 4 * 64 * 32 * 16 + 8 * 8 * 32 * 32 * 16 + 16 * 16 * 32 * 1 * 16)  # transposed convolutions
    assert macs == 64 * per_image
    assert abs(6 * macs / 1e9 - 2.1) < 0.05


def test_factorvae_profile_has_the_discriminator_and_counts_nested_calls_once(capsys):
    """The discriminator's layers have rows too; Linear.backward calls its backward_input, timed once."""
    from bench import train_step
    assert train_step.main(["--profile", "--model", "factorvae", "--img", "32", "--batch-sizes", "4", "--steps", "2",
                            "--warmup", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    d_rows = [line for line in lines if line.startswith("D.")]
    assert len(d_rows) == 13 and all(float(line.split()[-2]) > 0 for line in d_rows if "Linear" in line)

    from bench.layer_profile import LayerProfile
    from refnet import Linear
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    x = np.ones((4, 3), np.float32)
    with LayerProfile(layer) as profile:
        y, cache = layer.forward(x)
        layer.backward(np.ones_like(y), cache)          # calls backward_input inside: not a second entry
        layer.backward_input(np.ones_like(y), cache)    # called on its own (the TC term's path): an entry
    assert sorted(method for _, method in profile.seconds) == ["backward", "backward_input", "forward"]
    with LayerProfile(layer) as profile:
        layer.backward(np.ones_like(y), cache)
    assert list(profile.seconds) == [("", "backward")]
