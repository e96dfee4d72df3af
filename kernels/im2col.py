"""im2col and col2im (kernels/im2col.cu), one launch each instead of one copy per kernel offset.

    im2col: x (N, C, H, W) -> cols (C, kh, kw, OH, OW, N)
            cols[c, i, j, a, b, n] = x[n, c, a*sh + i - ph, b*sw + j - pw], 0 in the padding
    col2im: cols -> x (N, C, H, W), a view of (C, H, W, N) memory: each pixel the sum of the windows covering it

The references they must equal: refnet.conv.im2col and refnet.conv.col2im, same arguments, same
layouts. col2im adds in the reference's order, so on the CPU both are bit for bit the reference.
"""
from refnet import conv, get_array_module

from .dispatch import SUFFIX, choose_backend, prepare

SOURCE = "im2col.cu"


def _memory_and_strides(x):
    """(an array the kernel can take, x's element strides in it): x's own memory when x is a permutation
    of a C-contiguous array (refnet's batch_first views are), else a C-contiguous copy."""
    xp = get_array_module(x)
    order = sorted(range(x.ndim), key=lambda axis: -x.strides[axis])
    memory = x.transpose(order)
    if not memory.flags.c_contiguous:        # sliced or reversed: no single block of memory to read
        x = memory = xp.ascontiguousarray(x)
    return memory, tuple(s // x.itemsize for s in x.strides)


def im2col(x, kernel, stride, padding, backend="auto"):
    """x (N, C, H, W), any strides -> cols (C, kh, kw, OH, OW, N), gathering every kernel window."""
    device = choose_backend(x, backend)
    if device is None:
        return conv.im2col(x, kernel, stride, padding)
    if x.dtype not in SUFFIX:
        raise TypeError(f"im2col: the kernels take float32 or float64 arrays, not {x.dtype}")
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = conv._pair(kernel), conv._pair(stride), conv._pair(padding)
    n, c, h, w = x.shape
    oh, ow = conv.conv_output_size(h, kh, sh, ph), conv.conv_output_size(w, kw, sw, pw)
    cols = xp.empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    memory, strides = _memory_and_strides(x)
    device.launch(SOURCE, "im2col", x.dtype, cols.size,
                  (memory, *strides, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    return cols


def col2im(cols, x_shape, stride, padding, backend="auto"):
    """cols (C, kh, kw, OH, OW, N) -> x (N, C, H, W), batch-last memory: every window added back (im2col's
    adjoint)."""
    device = choose_backend(cols, backend)
    if device is None:
        return conv.col2im(cols, x_shape, stride, padding)
    xp, dtype, (cols,) = prepare(cols)
    c, kh, kw, oh, ow, n = cols.shape
    (sh, sw), (ph, pw) = conv._pair(stride), conv._pair(padding)
    _, _, h, w = x_shape
    x = xp.empty((c, h, w, n), dtype=dtype)
    device.launch(SOURCE, "col2im", dtype, x.size, (cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    return conv.batch_first(x)
