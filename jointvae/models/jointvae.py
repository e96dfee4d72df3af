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

The whole training pass is one layer, as every layer in refnet:

    out, cache = model.forward(x, noise)      # out: x_hat, the sample z, each KL term per example
    dx, grads = model.backward(dout, cache)   # dout: gradients of the loss w.r.t. out (jointvae.models.objective)

The samplers and KL terms are refnet.latent's, run through kernels/ (fused CUDA kernels on CuPy arrays).
"""
import numpy as np

import kernels
import refnet
from refnet import Container, Conv2d, ConvTranspose2d, Linear, ReLU, Sequential, Sigmoid

from .specs import normalise_latent_spec

HIDDEN = 256
FEATURES = (64, 4, 4)  # the encoder's last feature map, and the decoder's first
TEMPERATURE = 0.67     # the paper's Gumbel-softmax temperature tau


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
    def __init__(self, image_shape, latent_spec, temperature=TEMPERATURE, rng=None, dtype=np.float32,
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

    # ------------------------------------------------------------------ the whole pass

    def forward(self, x, noise):
        """Training mode: encode, sample with the given noise, decode.

        x (N, C, H, W) in [0, 1]; noise {'eps': (N, cont) or None, 'u': [(N, K_i), ...]} (draw_noise) ->
            out {'x_hat': (N, C, H, W) probabilities,
                 'z':     (N, latent_dim) the decoder's input, [continuous sample, relaxed one-hots],
                 'kl':    {'cont': (N, cont) per unit or None, 'disc': [(N,), ...]} each example's KL to the prior,
                 'dist':  the encoder's {'cont': (mean, logvar), 'disc': [alpha_i]}},
            cache
        """
        dist, encoder_cache = self.encode_forward(x)
        z, kl, sample_cache = self.sample_forward(dist, noise)
        x_hat, decoder_cache = self.decode_forward(z)
        return {"x_hat": x_hat, "z": z, "kl": kl, "dist": dist}, (encoder_cache, sample_cache, decoder_cache)

    def backward(self, dout, cache):
        """dout {'x_hat': (N, C, H, W), 'kl': like out['kl'] (or a scalar per part, for every example),
        'z': (N, latent_dim) or absent} -> dx, grads.

        dout['z'] is a gradient that reaches z by another path than the decoder (FactorVAE's TC
        term, through the discriminator); the two add. grads are keyed like self.params.
        """
        encoder_cache, sample_cache, decoder_cache = cache
        dz, decoder_grads = self.decode_backward(dout["x_hat"], decoder_cache)
        if dout.get("z") is not None:
            dz = dz + dout["z"]
        dx, encoder_grads = self.encode_backward(self.sample_backward(dz, dout["kl"], sample_cache), encoder_cache)
        return dx, {**encoder_grads, **decoder_grads}

    # ------------------------------------------------------------------ encoder

    def encode_forward(self, x):
        """x (N, C, H, W) -> dist {'cont': (mean, logvar) each (N, cont), 'disc': [alpha_i (N, K_i)]}, cache."""
        features, conv_cache = self.children["img_to_features"].forward(x)                    # (N, 64, 4, 4)
        hidden, hidden_cache = self.children["features_to_hidden"].forward(features.reshape(len(x), -1))  # (N, 256)
        dist, head_caches = {"cont": None, "disc": []}, {}
        if self.latent_spec["cont"]:
            mean, head_caches["fc_mean"] = self.children["fc_mean"].forward(hidden)
            logvar, head_caches["fc_log_var"] = self.children["fc_log_var"].forward(hidden)
            dist["cont"] = (mean, logvar)
        for i in range(len(self.latent_spec["disc"])):
            logits, head_caches[f"fc_alphas.{i}"] = self.children["fc_alphas"].children[str(i)].forward(hidden)
            dist["disc"].append(refnet.softmax(logits, axis=-1))
        return dist, (conv_cache, features.shape, hidden_cache, head_caches, dist)

    def encode_backward(self, ddist, cache):
        """ddist, gradients shaped like dist -> dx (N, C, H, W), the encoder's grads."""
        conv_cache, features_shape, hidden_cache, head_caches, dist = cache
        grads, dhidden = {}, 0.0
        dheads = {}
        if self.latent_spec["cont"]:
            dheads["fc_mean"], dheads["fc_log_var"] = ddist["cont"]
        for i, (dalpha, alpha) in enumerate(zip(ddist["disc"], dist["disc"])):
            dheads[f"fc_alphas.{i}"] = refnet.softmax_backward(dalpha, alpha, axis=-1)
        for head, dlogits in dheads.items():   # every head reads the hidden layer: their gradients add
            dh, head_grads = self.backward_child(head, dlogits, head_caches[head])
            dhidden = dhidden + dh
            grads.update(head_grads)
        dfeatures, hidden_grads = self.backward_child("features_to_hidden", dhidden, hidden_cache)
        dx, conv_grads = self.backward_child("img_to_features", dfeatures.reshape(features_shape), conv_cache)
        return dx, {**conv_grads, **hidden_grads, **grads}

    # ------------------------------------------------------------------ latent codes

    def sample_forward(self, dist, noise):
        """Training mode: the decoder's input sampled from dist with the given noise, and each KL to its prior.

        noise {'eps': (N, cont), 'u': [(N, K_i), ...]} ->
            z (N, cont + sum K): [mean + exp(logvar / 2) eps, gumbel_softmax(alpha_1, u_1), ...]
            kl {'cont': (N, cont) per unit, 'disc': [(N,) per row, ...]}
            cache
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

    def sample_backward(self, dz, dkl, cache):
        """dz (N, latent_dim), dkl {'cont': (N, cont), 'disc': [(N,), ...]} (or scalars) -> ddist shaped like dist.

        Each latent reaches the loss twice, through its sample and through its KL; the two gradients add.
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

    def sample(self, x, noise):
        """x (N, C, H, W), noise as for forward -> z (N, latent_dim): the training-mode code alone, no KL."""
        dist, _ = self.encode_forward(x)
        parts = []
        if dist["cont"] is not None:
            parts.append(refnet.reparameterize_normal(*dist["cont"], noise["eps"])[0])
        parts += [kernels.gumbel_softmax(alpha, u, self.temperature)[0] for alpha, u in zip(dist["disc"], noise["u"])]
        return refnet.get_array_module(parts[0]).concatenate(parts, axis=1)

    def eval_code(self, dist):
        """Eval mode: z = [mean, one-hot argmax alpha_1, ...] (N, latent_dim), no noise."""
        parts = [dist["cont"][0]] if dist["cont"] is not None else []
        parts += [refnet.one_hot_argmax(alpha) for alpha in dist["disc"]]
        return refnet.get_array_module(parts[0]).concatenate(parts, axis=1)

    # ------------------------------------------------------------------ decoder

    def decode_forward(self, z):
        """z (N, latent_dim) -> probabilities (N, C, H, W), cache."""
        features, fc_cache = self.children["latent_to_features"].forward(z)                 # (N, 1024)
        x_hat, conv_cache = self.children["features_to_img"].forward(features.reshape((len(z),) + FEATURES))
        return x_hat, (fc_cache, conv_cache)

    def decode_backward(self, dx_hat, cache):
        """dx_hat (N, C, H, W) -> dz (N, latent_dim), the decoder's grads."""
        fc_cache, conv_cache = cache
        dfeatures, conv_grads = self.backward_child("features_to_img", dx_hat, conv_cache)
        dz, fc_grads = self.backward_child("latent_to_features", dfeatures.reshape(len(dx_hat), -1), fc_cache)
        return dz, {**conv_grads, **fc_grads}

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


def draw_noise(model, batch_size, rng, xp=np, dtype=np.float32):
    """The step's randomness, drawn on the host from `rng` and copied to xp's device:
    {'eps': (N, cont) ~ N(0, 1) or None, 'u': [(N, K_i) ~ U(0, 1), ...]}."""
    noise = {"eps": None, "u": []}
    if model.latent_spec["cont"]:
        noise["eps"] = xp.asarray(rng.standard_normal((batch_size, model.latent_spec["cont"]), dtype=dtype))
    for k in model.latent_spec["disc"]:
        noise["u"].append(xp.asarray(rng.random((batch_size, k), dtype=dtype)))
    return noise
