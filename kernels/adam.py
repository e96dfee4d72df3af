"""Adam's update over flat buffers (kernels/adam.cu): every parameter of a model in one launch.

    adam_update(p, g, m, v, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay)

updates p, m, v in place, elementwise; p, g, m, v are usually the flat buffers of refnet/flat.py, and
`Adam.step_flat(flat_params, flat_grads, update=kernels.adam_update)` is then one launch per step.
The reference it must equal, bit for bit: refnet.optim.adam_update, which has the same signature.
"""
from refnet.optim import adam_update as reference

from .dispatch import choose_backend, prepare

SOURCE = "adam.cu"


def adam_update(p, g, m, v, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay, backend="auto"):
    """In place on p, m, v (one shape, dtype, C order); g any array of p's shape. Scalars: Python floats;
    step_size and bias_correction2_sqrt may also be 0-d arrays on p's device (a captured step's buffers)."""
    device = choose_backend(p, backend)
    if device is None:
        return reference(p, g, m, v, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay)
    for name, a in (("p", p), ("m", m), ("v", v)):
        # prepare() would copy such an array, and the update would land in the copy.
        if a.dtype != p.dtype or a.shape != p.shape or not a.flags.c_contiguous:
            raise TypeError(f"adam_update: {name} is updated in place, so it must be C-contiguous, "
                            f"of p's dtype {p.dtype} and shape {p.shape}")
    xp, dtype, (g,) = prepare(g, like=p, shape=p.shape)
    # The kernel reads these two from memory (adam.cu): from the host's floats, or from device buffers
    # without a round trip through the host.
    step_scalars = xp.stack([xp.asarray(step_size, dtype=dtype), xp.asarray(bias_correction2_sqrt, dtype=dtype)])
    # 1 - beta in double, as the reference's (1.0 - beta1) is; the launch rounds every scalar to T once.
    device.launch(SOURCE, "adam_update", dtype, p.size,
                  (p, g, m, v, p.size, step_scalars, float(beta2), 1.0 - float(beta1), 1.0 - float(beta2),
                   float(eps), float(weight_decay)))
