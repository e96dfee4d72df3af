"""The JointVAE network of Dupont (2018), with forward and backward by hand.

Architecture for 32 x 32 inputs (64 x 64 adds one conv and one transposed conv),
parameter names exactly those of the paper's PyTorch code:

    img_to_features     Conv(C,32,4,2,1) ReLU Conv(32,64,4,2,1) ReLU Conv(64,64,4,2,1) ReLU   (N, 64, 4, 4)
    features_to_hidden  Linear(1024, 256) ReLU                                                 (N, 256)
    fc_mean, fc_log_var Linear(256, cont)                                                       (N, cont)
    fc_alphas.i         Linear(256, K_i), then softmax                                         (N, K_i)
    latent_to_features  Linear(cont + sum K, 256) ReLU Linear(256, 1024) ReLU                 (N, 1024)
    features_to_img     ConvT(64,32,4,2,1) ReLU ConvT(32,32,4,2,1) ReLU ConvT(32,C,4,2,1) Sigmoid

The decoder input is [continuous sample, discrete sample 1, discrete sample 2, ...].
A latent distribution is a dict {'cont': (mean, logvar) or None, 'disc': [alpha_1, ...]}.
"""
import numpy as np

import kernels
import refnet
from refnet import Container, Conv2d, ConvTranspose2d, Linear, ReLU, Sequential, Sigmoid

from . import latent
from .specs import normalise_latent_spec

HIDDEN = 256
FEATURES = (64, 4, 4)  # the encoder's last feature map, and the decoder's first


class InputError(ValueError):
    """Data that does not fit the model: the message names the problem."""


def _conv_stack(layer_class, channels, last_activation, rng):
    """[conv, ReLU, conv, ReLU, ..., conv, last_activation]: kernel 4, stride 2, padding 1 throughout."""
    layers = []
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(layer_class(c_in, c_out, 4, stride=2, padding=1, rng=rng))
        layers.append(last_activation() if i == len(channels) - 2 else ReLU())
    return layers


INITS = ("pytorch", "pytorch-0.4")


def rescale_to_pytorch_04_init(layer):
    """Turn a ConvTranspose2d's PyTorch-default draw into the one torch 0.4 (2018) made.

    torch >= 1.0 bounds a transposed convolution's weight and bias by
    1/sqrt(out * kh * kw) (fan_in from weight.shape[1]); torch 0.4, which trained the
    published models, used 1/sqrt(in * kh * kw). U(-b, b) scaled by b'/b is U(-b', b'),
    so multiplying by sqrt(out / in) gives the old distribution exactly.
    """
    layer.params["weight"] *= np.sqrt(layer.out_channels / layer.in_channels)
    if "bias" in layer.params:
        layer.params["bias"] *= np.sqrt(layer.out_channels / layer.in_channels)


class JointVAE(Container):
    def __init__(self, image_shape, latent_spec, temperature=latent.TEMPERATURE, rng=None, dtype=np.float32,
                 init="pytorch"):
        c, h, w = image_shape
        if (h, w) not in ((32, 32), (64, 64)):
            raise InputError(f"JointVAE supports 32x32 and 64x64 images, got {h}x{w}")
        self.image_shape = (c, h, w)
        self.latent_spec = normalise_latent_spec(latent_spec)
        self.temperature = temperature
        cont, disc = self.latent_spec["cont"], self.latent_spec["disc"]
        self.latent_dim = cont + sum(disc)
        rng = rng if rng is not None else np.random.default_rng()

        encoder_channels = [c, 32] + ([32] if h == 64 else []) + [64, 64]
        decoder_channels = [64] + ([64] if h == 64 else []) + [32, 32, c]
        children = {
            "img_to_features": Sequential(*_conv_stack(Conv2d, encoder_channels, ReLU, rng)),
            "features_to_hidden": Sequential(Linear(int(np.prod(FEATURES)), HIDDEN, rng=rng), ReLU()),
        }
        if cont:
            children["fc_mean"] = Linear(HIDDEN, cont, rng=rng)
            children["fc_log_var"] = Linear(HIDDEN, cont, rng=rng)
        if disc:
            children["fc_alphas"] = Container({str(i): Linear(HIDDEN, k, rng=rng) for i, k in enumerate(disc)})
        children["latent_to_features"] = Sequential(Linear(self.latent_dim, HIDDEN, rng=rng), ReLU(),
                                                    Linear(HIDDEN, int(np.prod(FEATURES)), rng=rng), ReLU())
        children["features_to_img"] = Sequential(*_conv_stack(ConvTranspose2d, decoder_channels, Sigmoid, rng))
        super().__init__(children)
        if init not in INITS:
            raise InputError(f"unknown init {init!r}: expected one of {INITS}")
        if init == "pytorch-0.4":
            for layer in children["features_to_img"].children.values():
                if isinstance(layer, ConvTranspose2d):
                    rescale_to_pytorch_04_init(layer)
        if dtype != np.float32:
            self.astype(dtype)

    @property
    def num_pixels(self):
        return int(np.prod(self.image_shape))

    # ------------------------------------------------------------------ encoder

    def encode_forward(self, x):
        """x (N, C, H, W) -> dist {'cont': (mean, logvar), 'disc': [alpha_i]}, cache."""
        features, c_conv = self.children["img_to_features"].forward(x)
        hidden, c_hidden = self.children["features_to_hidden"].forward(features.reshape(len(x), -1))
        dist = {"cont": None, "disc": []}
        if self.latent_spec["cont"]:
            mean, _ = self.children["fc_mean"].forward(hidden)
            logvar, _ = self.children["fc_log_var"].forward(hidden)
            dist["cont"] = (mean, logvar)
        for i in range(len(self.latent_spec["disc"])):
            logits, _ = self.children["fc_alphas"].children[str(i)].forward(hidden)
            dist["disc"].append(refnet.softmax(logits, axis=-1))
        return dist, (c_conv, features.shape, c_hidden, hidden, dist)

    def encode_backward(self, ddist, cache):
        """ddist: gradients with the shape of dist -> parameter grads of the encoder."""
        c_conv, features_shape, c_hidden, hidden, dist = cache
        grads, dhidden = {}, 0.0
        if self.latent_spec["cont"]:
            dmean, dlogvar = ddist["cont"]
            for head, d in (("fc_mean", dmean), ("fc_log_var", dlogvar)):
                dh, g = self.children[head].backward(d, hidden)
                dhidden = dhidden + dh
                grads.update({f"{head}.{k}": v for k, v in g.items()})
        for i, (dalpha, alpha) in enumerate(zip(ddist["disc"], dist["disc"])):
            dlogits = refnet.softmax_backward(dalpha, alpha, axis=-1)
            dh, g = self.children["fc_alphas"].children[str(i)].backward(dlogits, hidden)
            dhidden = dhidden + dh
            grads.update({f"fc_alphas.{i}.{k}": v for k, v in g.items()})
        dfeatures, g = self.children["features_to_hidden"].backward(dhidden, c_hidden)
        grads.update({f"features_to_hidden.{k}": v for k, v in g.items()})
        _, g = self.children["img_to_features"].backward(dfeatures.reshape(features_shape), c_conv)
        grads.update({f"img_to_features.{k}": v for k, v in g.items()})
        return grads

    # ------------------------------------------------------------------ latent codes

    def latent_forward(self, dist, noise):
        """Training mode: sample the decoder input from dist with the given noise, and each KL to its prior.

        noise {'eps': (N, cont), 'u': [(N, K_i), ...]} ->
            z (N, cont + sum K): [mean + exp(logvar / 2) eps, gumbel_softmax(alpha_1, u_1), ...]
            kl {'cont': (N, cont) per unit, 'disc': [(N,) per row, ...]}
            cache
        The ops come from kernels/: fused CUDA kernels on CuPy arrays, the NumPy
        reference (jointvae.latent, refnet.kl) on NumPy arrays.
        """
        parts, kl, caches = [], {"cont": None, "disc": []}, {"cont": None, "disc": []}
        if dist["cont"] is not None:
            (z, kl["cont"]), caches["cont"] = kernels.reparameterize_with_kl(*dist["cont"], noise["eps"])
            parts.append(z)
        for alpha, u in zip(dist["disc"], noise["u"]):
            y, sample_cache = kernels.gumbel_softmax(alpha, u, self.temperature)
            kl_rows, kl_cache = kernels.kl_categorical_uniform(alpha)
            parts.append(y)
            kl["disc"].append(kl_rows)
            caches["disc"].append((sample_cache, kl_cache))
        return refnet.get_array_module(parts[0]).concatenate(parts, axis=1), kl, caches

    def latent_backward(self, dz, dkl, cache):
        """dz (N, latent_dim), dkl {'cont': (N, cont), 'disc': [(N,), ...]} -> ddist with the shape of dist.

        Each latent reaches the loss twice, through its sample and through its KL;
        the two gradients add.
        """
        ddist, start = {"cont": None, "disc": []}, 0
        cont = self.latent_spec["cont"]
        if cont:
            ddist["cont"] = kernels.reparameterize_with_kl_backward(dz[:, :cont], dkl["cont"], cache["cont"])
            start = cont
        for k, dkl_rows, (sample_cache, kl_cache) in zip(self.latent_spec["disc"], dkl["disc"], cache["disc"]):
            ddist["disc"].append(kernels.gumbel_softmax_backward(dz[:, start:start + k], sample_cache) +
                                 kernels.kl_categorical_uniform_backward(dkl_rows, kl_cache))
            start += k
        return ddist

    def eval_code(self, dist):
        """Eval mode: z = [mean, one-hot argmax alpha_1, ...], no noise."""
        parts = [dist["cont"][0]] if dist["cont"] is not None else []
        parts += [latent.one_hot_argmax(alpha) for alpha in dist["disc"]]
        return refnet.get_array_module(parts[0]).concatenate(parts, axis=1)

    # ------------------------------------------------------------------ decoder

    def decode_forward(self, z):
        """z (N, latent_dim) -> probabilities (N, C, H, W), cache."""
        features, c_fc = self.children["latent_to_features"].forward(z)
        x_hat, c_conv = self.children["features_to_img"].forward(features.reshape((len(z),) + FEATURES))
        return x_hat, (c_fc, c_conv)

    def decode_backward(self, dx_hat, cache):
        """dx_hat (N, C, H, W) -> dz (N, latent_dim), parameter grads of the decoder."""
        c_fc, c_conv = cache
        dfeatures, g_conv = self.children["features_to_img"].backward(dx_hat, c_conv)
        dz, g_fc = self.children["latent_to_features"].backward(dfeatures.reshape(len(dx_hat), -1), c_fc)
        grads = {f"features_to_img.{k}": v for k, v in g_conv.items()}
        grads.update({f"latent_to_features.{k}": v for k, v in g_fc.items()})
        return dz, grads

    # ------------------------------------------------------------------ public API

    def check_images(self, x):
        """Raise InputError naming the problem unless x is float (N, C, H, W) in [0, 1] without NaN."""
        xp = refnet.get_array_module(x)
        if getattr(x, "ndim", None) != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise InputError(f"expected images of shape (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        if x.dtype.kind != "f":
            raise InputError(f"expected float images in [0, 1], got dtype {x.dtype}")
        if bool(xp.isnan(x).any()):
            raise InputError("images contain NaN")
        if bool((x < 0).any()) or bool((x > 1).any()):
            raise InputError("images must lie in [0, 1]")

    def encode(self, x):
        """x float32 (N, C, H, W) in [0, 1] -> {'cont': (mean, logvar), 'disc': [alpha_1, ...]}."""
        self.check_images(x)
        dist, _ = self.encode_forward(x)
        return dist

    def decode(self, z):
        """z (N, cont + sum(disc)) -> probabilities (N, C, H, W)."""
        if getattr(z, "ndim", None) != 2 or z.shape[1] != self.latent_dim:
            raise InputError(f"expected latent codes of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        x_hat, _ = self.decode_forward(z)
        return x_hat

    def reconstruct(self, x):
        """Eval-mode reconstruction: decode([mean, one-hot argmax]) of encode(x)."""
        return self.decode(self.eval_code(self.encode(x)))
