"""2-D convolution and transposed convolution through im2col / col2im.

Both layers are one matrix product plus a gather (im2col) or a scatter-add
(col2im); the only Python loop is over the kh * kw kernel offsets.

Memory layout. The layers take and return PyTorch's shapes, (N, C, H, W), but
what they return is a view of memory laid out batch-last, (C, H, W, N):

    y = batch_first(a)     a (C, H, W, N) contiguous  ->  y (N, C, H, W), y[n, c, h, w] = a[c, h, w, n]

Why: each kernel offset makes im2col copy, and col2im add, a strided window of
the image. With the batch last, every row of that window is a run of N
neighbouring numbers (64 at batch 64); with NCHW memory it is a run of OW
numbers (4 to 32 here), and NumPy's copy loops are far slower on short runs
(2.5-6x for this model's layers). The matrix products see the same matrices
either way, only their columns come in another order. Elementwise layers
(ReLU, adding a bias) keep their input's memory order, so the next
convolution finds batch-last memory and `batch_last` is free.

Layout of the column buffer, chosen so that it is already the matrix the
product needs (no transpose copy):

    cols (C, kh, kw, OH, OW, N)   viewed as   (C*kh*kw, OH*OW*N)
    cols[c, i, j, a, b, n] = x_padded[n, c, a*stride + i, b*stride + j]

im2col and col2im are adjoint: <im2col(x), c> == <x, col2im(c)>, which is
exactly why the backward of one is the other (checked in verify).

The layers call them, and every matrix product, through refnet/ops.py, so that an accelerated
backend can take them over for a block (`with refnet.use_ops(...)`).
"""
import numpy as np

from .backend import get_array_module
from .init import default_rng, fan_in, uniform_init
from .layer import Layer
from .ops import matmul, ops_in_use


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding):
    """Output length of a transposed convolution: (size - 1) * s - 2p + k."""
    return (size - 1) * stride - 2 * padding + kernel


def batch_last(x):
    """x (N, C, H, W) -> the same numbers as a contiguous (C, H, W, N) array; free when x is batch_first(a)."""
    return get_array_module(x).ascontiguousarray(x.transpose(1, 2, 3, 0))


def batch_first(a):
    """a (C, H, W, N) -> an (N, C, H, W) view of the same memory (no copy)."""
    return a.transpose(3, 0, 1, 2)


def im2col(x, kernel, stride, padding):
    """x (N, C, H, W) -> cols (C, kh, kw, OH, OW, N), gathering every kernel window."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    x_padded = x.transpose(1, 2, 3, 0)  # (C, H, W, N): a view; the copies below read batch-last rows
    if ph or pw:
        x_padded = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
        x_padded[:, ph:ph + h, pw:pw + w] = x.transpose(1, 2, 3, 0)
    cols = xp.empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = x_padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    return cols


def col2im(cols, x_shape, stride, padding):
    """cols (C, kh, kw, OH, OW, N) -> x (N, C, H, W), batch-last memory: scatter-add of every window
    (im2col's adjoint)."""
    xp = get_array_module(cols)
    c, kh, kw, oh, ow, n = cols.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    _, _, h, w = x_shape
    # Tall enough for every window even when (H + 2p - k) is not a multiple of the stride.
    x_padded = xp.zeros((c, max(h + 2 * ph, sh * (oh - 1) + kh), max(w + 2 * pw, sw * (ow - 1) + kw), n),
                        dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            x_padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += cols[:, i, j]
    return batch_first(x_padded[:, ph:ph + h, pw:pw + w])


def _gather_windows(x, kernel, stride, padding):
    """im2col, or the accelerated one in use (refnet/ops.py)."""
    return (ops_in_use().im2col or im2col)(x, kernel, stride, padding)


def _scatter_windows(cols, x_shape, stride, padding):
    """col2im, or the accelerated one in use (refnet/ops.py)."""
    return (ops_in_use().col2im or col2im)(cols, x_shape, stride, padding)


def _check_input(layer, x, channels):
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{type(layer).__name__} expects (N, {channels}, H, W), got shape {tuple(x.shape)}")


class _ConvolutionLayer(Layer):
    """What Conv2d and ConvTranspose2d share: arguments, PyTorch's initialisation, repr.

    Subclasses say how their weight is laid out (weight_shape) and do the work.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 rng=None, dtype=np.float32):
        super().__init__()
        rng = default_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        shape = self.weight_shape()
        self.params["weight"] = uniform_init(shape, fan_in(shape), rng, dtype)
        if bias:
            self.params["bias"] = uniform_init((out_channels,), fan_in(shape), rng, dtype)

    def weight_shape(self):
        raise NotImplementedError

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")


class Conv2d(_ConvolutionLayer):
    """Cross-correlation, torch.nn.Conv2d's semantics and layout.

    x (N, C_in, H, W) -> y (N, C_out, OH, OW), OH = floor((H + 2p - kh) / s) + 1
    weight (C_out, C_in, kh, kw), bias (C_out,)
    forward:  Y = W2 @ cols + b          W2 (C_out, C_in*kh*kw), cols (C_in*kh*kw, OH*OW*N)
    backward: dW2 = dY @ cols^T,  dcols = W2^T @ dY,  dx = col2im(dcols),  db = sum dY
    """

    def weight_shape(self):
        return (self.out_channels, self.in_channels) + self.kernel_size

    def forward(self, x):
        _check_input(self, x, self.in_channels)
        cols = _gather_windows(x, self.kernel_size, self.stride, self.padding)
        _, _, _, oh, ow, n = cols.shape
        w2 = self.params["weight"].reshape(self.out_channels, -1)
        y = matmul(w2, cols.reshape(w2.shape[1], -1))                  # (C_out, OH*OW*N)
        if "bias" in self.params:
            y += self.params["bias"][:, None]                          # y is ours: add in place
        return batch_first(y.reshape(self.out_channels, oh, ow, n)), (cols, x.shape)

    def backward(self, dy, cache):
        cols, x_shape = cache
        w = self.params["weight"]
        dy2 = batch_last(dy).reshape(self.out_channels, -1)            # (C_out, OH*OW*N)
        cols2 = cols.reshape(w[0].size, -1)                            # (C_in*kh*kw, OH*OW*N)
        grads = {"weight": matmul(dy2, cols2.T).reshape(w.shape)}
        if "bias" in self.params:
            grads["bias"] = dy2.sum(axis=1)
        dcols = matmul(w.reshape(self.out_channels, -1).T, dy2).reshape(cols.shape)
        return _scatter_windows(dcols, x_shape, self.stride, self.padding), grads


class ConvTranspose2d(_ConvolutionLayer):
    """Transposed convolution (the adjoint of Conv2d), torch.nn.ConvTranspose2d's semantics.

    x (N, C_in, H, W) -> y (N, C_out, OH, OW), OH = (H - 1) * s - 2p + kh
    weight (C_in, C_out, kh, kw), bias (C_out,)
    forward:  cols = W2^T @ X,  y = col2im(cols) + b     W2 (C_in, C_out*kh*kw), X (C_in, H*W*N)
    backward: dcols = im2col(dy),  dX = W2 @ dcols,  dW2 = X @ dcols^T,  db = sum dy
    """

    def weight_shape(self):
        return (self.in_channels, self.out_channels) + self.kernel_size

    def output_shape(self, x_shape):
        n, _, h, w = x_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (n, self.out_channels,
                conv_transpose_output_size(h, kh, sh, ph), conv_transpose_output_size(w, kw, sw, pw))

    def forward(self, x):
        _check_input(self, x, self.in_channels)
        n, _, h, w = x.shape
        out_shape = self.output_shape(x.shape)
        if out_shape[2] < 1 or out_shape[3] < 1:
            raise ValueError(f"ConvTranspose2d output would be empty for input shape {tuple(x.shape)}")
        x2 = batch_last(x).reshape(self.in_channels, -1)               # (C_in, H*W*N)
        w2 = self.params["weight"].reshape(self.in_channels, -1)       # (C_in, C_out*kh*kw)
        cols = matmul(w2.T, x2).reshape((self.out_channels,) + self.kernel_size + (h, w, n))
        y = _scatter_windows(cols, out_shape, self.stride, self.padding)
        if "bias" in self.params:
            y += self.params["bias"].reshape(1, -1, 1, 1)              # y is ours: add in place
        return y, (x2, x.shape)

    def backward(self, dy, cache):
        x2, x_shape = cache
        n, _, h, w = x_shape
        w2 = self.params["weight"].reshape(self.in_channels, -1)
        dcols = _gather_windows(dy, self.kernel_size, self.stride, self.padding)  # (C_out, kh, kw, H, W, N)
        dcols2 = dcols.reshape(w2.shape[1], -1)                                   # (C_out*kh*kw, H*W*N)
        grads = {"weight": matmul(x2, dcols2.T).reshape(self.params["weight"].shape)}
        if "bias" in self.params:
            grads["bias"] = dy.sum(axis=(0, 2, 3))
        dx = batch_first(matmul(w2, dcols2).reshape(self.in_channels, h, w, n))
        return dx, grads
