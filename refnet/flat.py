"""One flat buffer for all of a layer's parameters, so that an elementwise optimiser step is one operation.

    flat_params, layout = flatten_params(model)       # model.params are now views into flat_params
    optimizer = Adam(lr=1e-3, layout=layout)          # its moments: two more flat buffers
    flat_grads = layout.gather(grads)                 # the gradients, copied into the same order
    optimizer.step_flat(flat_params, flat_grads)      # one update of every parameter (one GPU launch
                                                      # with update=kernels.adam_update)

A FlatLayout maps each name to (offset, shape) in a 1-D buffer of `size` elements, packed in the
order of layer.params. Views stay views only as long as nothing replaces them: `astype`, `to` or
loading weights with set_params put new arrays into the layer, and the buffer is then no longer its.
"""
import math

from .backend import get_array_module


class FlatLayout:
    """name -> (offset, shape) in one 1-D buffer of `size` elements, in order, without gaps."""

    def __init__(self, shapes):
        """shapes: {name: shape}, in the order the buffer holds them."""
        self.offsets, self.shapes = {}, {}
        offset = 0
        for name, shape in shapes.items():
            self.offsets[name], self.shapes[name] = offset, tuple(shape)
            offset += math.prod(shape)
        self.size = offset

    @classmethod
    def of(cls, arrays):
        """The layout of a {name: array} dict, e.g. layer.params."""
        return cls({name: a.shape for name, a in arrays.items()})

    @property
    def names(self):
        return list(self.offsets)

    def views(self, buffer):
        """{name: its part of the 1-D `buffer`, reshaped}: views, so writing one writes the buffer."""
        if buffer.shape != (self.size,):
            raise ValueError(f"a flat buffer of this layout has shape ({self.size},), not {buffer.shape}")
        return {name: buffer[offset:offset + math.prod(self.shapes[name])].reshape(self.shapes[name])
                for name, offset in self.offsets.items()}

    def gather(self, arrays, out=None):
        """{name: array}, the layout's names exactly -> one flat buffer in the layout's order (`out` if given)."""
        if set(arrays) != set(self.offsets):
            raise KeyError(f"FlatLayout.gather: missing {sorted(set(self.offsets) - set(arrays))}, "
                           f"unexpected {sorted(set(arrays) - set(self.offsets))}")
        if out is None:
            xp = get_array_module(*arrays.values())
            out = xp.empty(self.size, dtype=xp.result_type(*arrays.values()))
        for name, view in self.views(out).items():
            view[...] = arrays[name]
        return out


def flatten_params(layer):
    """Copy layer's parameters into one new 1-D buffer and make layer.params views into it -> (buffer, layout).

    The parameters must share one dtype (the buffer's); the buffer is on their device.
    """
    params = layer.params
    dtypes = {a.dtype for a in params.values()}
    if len(dtypes) != 1:
        raise TypeError(f"flatten_params: the parameters must share one dtype, not {sorted(map(str, dtypes))}")
    layout = FlatLayout.of(params)
    buffer = layout.gather(params)
    layer.set_params(layout.views(buffer))
    return buffer, layout
