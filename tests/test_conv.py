"""Convolutions: output sizes, hand-computed examples, and a direct-loop reference."""
import numpy as np
import pytest

import refnet


def direct_conv2d(x, w, b, stride, padding):
    """The definition, one output element at a time: y[n,o,i,j] = b[o] + sum x_pad[n,c,i*s+u,j*s+v] w[o,c,u,v]."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("ncuv,ocuv->no", window, w) + b
    return y


def direct_conv_transpose2d(x, w, b, stride, padding):
    """The definition: every input pixel adds x * w into a kh x kw block, then the border p is cropped."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    full = np.zeros((n, o, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum("nc,couv->nouv", x[:, :, i, j], w)
    return full[:, :, padding:full.shape[2] - padding, padding:full.shape[3] - padding] + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("size,expected", [(32, 16), (16, 8), (8, 4), (64, 32), (5, 2), (1, 0)])
def test_conv_output_size_k4_s2_p1(size, expected):
    assert refnet.conv_output_size(size, 4, 2, 1) == expected


@pytest.mark.parametrize("size,expected", [(4, 8), (8, 16), (16, 32), (32, 64), (1, 2)])
def test_conv_transpose_output_size_k4_s2_p1(size, expected):
    assert refnet.conv_transpose_output_size(size, 4, 2, 1) == expected


def test_layer_output_shapes_of_the_jointvae_encoder_and_decoder():
    rng = np.random.default_rng(0)
    x = np.zeros((2, 1, 32, 32), np.float32)
    for c_in, c_out in [(1, 32), (32, 64), (64, 64)]:
        x, _ = refnet.Conv2d(c_in, c_out, 4, 2, 1, rng=rng).forward(x)
    assert x.shape == (2, 64, 4, 4)
    for c_in, c_out in [(64, 32), (32, 32), (32, 1)]:
        x, _ = refnet.ConvTranspose2d(c_in, c_out, 4, 2, 1, rng=rng).forward(x)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32


def test_conv2d_hand_computed_k4_s2_p1():
    # All-ones 4x4 kernel on x = 0..15: each output sums the 3x3 block of x its padded window covers.
    conv = refnet.Conv2d(1, 1, 4, stride=2, padding=1)
    conv.set_params({"weight": np.ones((1, 1, 4, 4)), "bias": np.zeros(1)})
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y, _ = conv.forward(x)
    np.testing.assert_array_equal(y[0, 0], [[45, 54], [81, 90]])


def test_conv_transpose2d_hand_computed_k4_s2_p1():
    # Each input pixel spreads into a 4x4 block at (2i, 2j) of a 6x6 canvas; cropping 1 leaves 4x4.
    deconv = refnet.ConvTranspose2d(1, 1, 4, stride=2, padding=1)
    deconv.set_params({"weight": np.ones((1, 1, 4, 4)), "bias": np.array([0.5])})
    y, _ = deconv.forward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.array([[1, 3, 3, 2], [4, 10, 10, 6], [4, 10, 10, 6], [3, 7, 7, 4]]) + 0.5
    np.testing.assert_array_equal(y[0, 0], expected)


@pytest.mark.parametrize("stride,padding,kernel,size", [(2, 1, 4, 8), (1, 0, 3, 5), (3, 2, 2, 7), (2, 0, 1, 6)])
def test_conv_layers_match_direct_definition(stride, padding, kernel, size):
    rng = np.random.default_rng(stride * 10 + padding)
    x = rng.standard_normal((2, 3, size, size))
    conv = refnet.Conv2d(3, 4, kernel, stride, padding, rng=rng).astype(np.float64)
    y, _ = conv.forward(x)
    np.testing.assert_allclose(y, direct_conv2d(x, conv.params["weight"], conv.params["bias"], stride, padding),
                               rtol=1e-12, atol=1e-12)
    deconv = refnet.ConvTranspose2d(3, 4, kernel, stride, padding, rng=rng).astype(np.float64)
    y, _ = deconv.forward(x)
    np.testing.assert_allclose(y, direct_conv_transpose2d(x, deconv.params["weight"], deconv.params["bias"],
                                                          stride, padding), rtol=1e-12, atol=1e-12)


def test_conv_rejects_wrong_channels_with_clear_message():
    conv = refnet.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\), got shape \(2, 1, 8, 8\)"):
        conv.forward(np.zeros((2, 1, 8, 8), np.float32))


def test_init_matches_pytorch_bounds():
    # kaiming_uniform(a=sqrt(5)) and the bias both give U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    # a transposed convolution's fan_in is out_channels * kh * kw (torch reads weight.shape[1]).
    rng = np.random.default_rng(0)
    conv = refnet.Conv2d(32, 64, 4, rng=rng)
    deconv = refnet.ConvTranspose2d(64, 16, 4, rng=rng)
    for layer, fan in [(conv, 32 * 16), (deconv, 16 * 16)]:
        for name in ("weight", "bias"):
            values = layer.params[name]
            assert values.dtype == np.float32
            assert np.abs(values).max() <= 1 / np.sqrt(fan)
            assert np.abs(values).max() > 0.9 / np.sqrt(fan)   # the whole range is used
    again = refnet.Conv2d(32, 64, 4, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.params["weight"], conv.params["weight"])  # seeded: reproducible
