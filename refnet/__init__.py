"""refnet: a small neural-network layer library with hand-written backward passes.

Every layer follows one contract (see layer.py):

    y, cache = layer.forward(x)
    dx, grads = layer.backward(dy, cache)

and runs unchanged on NumPy or CuPy arrays: `xp` comes from the data.
"""
from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, select, sigmoid, softmax, softmax_backward
from .backend import get_array_module, gpu_available, params_to, to_device, to_numpy
from .conv import (Conv2d, ConvTranspose2d, batch_first, batch_last, col2im, conv_output_size,
                   conv_transpose_output_size, im2col)
from .flat import FlatLayout, flatten_params
from .latent import (gumbel_softmax, gumbel_softmax_backward, kl_categorical_uniform, kl_categorical_uniform_backward,
                     kl_normal, kl_normal_backward, max_categorical_kl, one_hot_argmax, reparameterize_normal,
                     reparameterize_normal_backward)
from .layer import Container, Layer, Sequential
from .linear import Linear
from .memory import retain_freed_memory
from .losses import (binary_cross_entropy, binary_cross_entropy_backward, binary_cross_entropy_with_logits,
                     binary_cross_entropy_with_logits_backward, log_softmax, mse, mse_backward,
                     softmax_cross_entropy, softmax_cross_entropy_backward)
from .ops import Ops, ops_in_use, use_ops
from .optim import Adam, adam_update
from .serialization import load_npz, load_params, save_npz, save_params
from .shape import Flatten, Reshape

__all__ = [name for name in dir() if not name.startswith("_")]
