"""The paper's JointVAE in eager PyTorch: the computation our refnet training step is timed against.

Written after Dupont's own code (Schlumberger/joint-vae: models.py and training.py), with the
parameter names of jointvae.models.jointvae.JointVAE, so one state dict fits both (strict load):

    img_to_features.{0,2,4}     Conv2d(C,32) Conv2d(32,64) Conv2d(64,64), kernel 4 stride 2 pad 1   (N, 64, 4, 4)
    features_to_hidden.0        Linear(1024, 256)                                                    (N, 256)
    fc_mean, fc_log_var         Linear(256, cont)                                                    (N, cont)
    fc_alphas.i                 Linear(256, K_i), then softmax                                       (N, K_i)
    latent_to_features.{0,2}    Linear(cont + sum K, 256) Linear(256, 1024)                          (N, 1024)
    features_to_img.{0,2,4}     ConvTranspose2d(64,32) (32,32) (32,C), then sigmoid                  (N, C, H, W)

(64 x 64 inputs add Conv2d(32,32) after the first conv and ConvTranspose2d(64,64) before the first
transposed conv, as in the paper.) The loss is jointvae/models/objective.py's, written with torch ops:

    BCE summed over pixels, mean over batch + gamma |KL_cont - C_cont(t)| + gamma |KL_disc - C_disc(t)|,
    divided by the number of pixels.

(β-VAE's form, weight * KL, where the spec has 'beta'; FactorVAE adds tc_gamma * TC: bench/torch_factorvae.py.)
Only the penalties (C(t) and the weights) are taken from jointvae.models.objective.kl_penalties: they are
arithmetic on the spec, done on the host, and not part of what is compared or timed.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

import refnet
from refnet.latent import EPS
from jointvae.models.jointvae import FEATURES, HIDDEN, TEMPERATURE


def conv_stack(layer_class, channels, last_activation):
    """[conv, ReLU, ..., conv, last_activation] over consecutive channel pairs: kernel 4, stride 2, padding 1."""
    layers = []
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(layer_class(c_in, c_out, 4, stride=2, padding=1))
        layers.append(last_activation() if i == len(channels) - 2 else nn.ReLU())
    return nn.Sequential(*layers)


class TorchJointVAE(nn.Module):
    """JointVAE with PyTorch layers; `forward` is the training-mode pass (sampled latents)."""

    def __init__(self, image_shape, latent_spec, temperature=TEMPERATURE):
        super().__init__()
        c, h, w = image_shape
        self.latent_spec, self.temperature = latent_spec, temperature
        self.num_pixels = c * h * w
        cont, disc = latent_spec["cont"], latent_spec["disc"]
        self.img_to_features = conv_stack(nn.Conv2d, [c, 32] + ([32] if h == 64 else []) + [64, 64], nn.ReLU)
        self.features_to_hidden = nn.Sequential(nn.Linear(math.prod(FEATURES), HIDDEN), nn.ReLU())
        if cont:
            self.fc_mean = nn.Linear(HIDDEN, cont)
            self.fc_log_var = nn.Linear(HIDDEN, cont)
        if disc:
            self.fc_alphas = nn.ModuleList(nn.Linear(HIDDEN, k) for k in disc)
        self.latent_to_features = nn.Sequential(nn.Linear(cont + sum(disc), HIDDEN), nn.ReLU(),
                                                nn.Linear(HIDDEN, math.prod(FEATURES)), nn.ReLU())
        self.features_to_img = conv_stack(nn.ConvTranspose2d, [64] + ([64] if h == 64 else []) + [32, 32, c],
                                          nn.Sigmoid)

    def encode(self, x):
        """x (N, C, H, W) -> {'cont': (mean, logvar) each (N, cont) or None, 'disc': [alpha_i (N, K_i)]}."""
        hidden = self.features_to_hidden(self.img_to_features(x).flatten(1))             # (N, 256)
        dist = {"cont": None, "disc": []}
        if self.latent_spec["cont"]:
            dist["cont"] = (self.fc_mean(hidden), self.fc_log_var(hidden))
        if self.latent_spec["disc"]:
            dist["disc"] = [F.softmax(fc(hidden), dim=1) for fc in self.fc_alphas]
        return dist

    def sample(self, dist, noise=None):
        """dist -> z (N, cont + sum K): reparameterised normal and Gumbel-softmax samples, concatenated.

        noise {'eps': (N, cont), 'u': [(N, K_i)]} as from jointvae.models.jointvae.draw_noise (as tensors);
        None draws it here with torch on the model's device, as the paper's code does.
        """
        parts = []
        if dist["cont"] is not None:
            mean, logvar = dist["cont"]
            eps = torch.randn_like(mean) if noise is None else noise["eps"]
            parts.append(mean + torch.exp(0.5 * logvar) * eps)
        for i, alpha in enumerate(dist["disc"]):
            u = torch.rand_like(alpha) if noise is None else noise["u"][i]
            gumbel = -torch.log(-torch.log(u + EPS) + EPS)
            parts.append(F.softmax((torch.log(alpha + EPS) + gumbel) / self.temperature, dim=1))
        return torch.cat(parts, dim=1)

    def decode(self, z):
        """z (N, latent_dim) -> probabilities (N, C, H, W)."""
        return self.features_to_img(self.latent_to_features(z).view(-1, *FEATURES))

    def forward(self, x, noise=None):
        """x (N, C, H, W) -> (x_hat (N, C, H, W), dist, z (N, latent_dim))."""
        dist = self.encode(x)
        z = self.sample(dist, noise)
        return self.decode(z), dist, z


def objective(net, x, x_hat, dist, penalties, tc_penalty=None):
    """The paper's loss with the given KL penalties, divided by the number of pixels: a 0-d tensor.

    penalties: kl_penalties(spec, step)'s {'cont': (C, weight) or None, 'disc': ...}, C a float, a 0-d tensor
    (a compiled step's input) or None (weight * KL); tc_penalty: FactorVAE's tc_gamma * TC, or None.
    """
    pixels = net.num_pixels
    # The paper's form: mean over every pixel of every image, times pixels = summed over pixels, mean over batch.
    loss = F.binary_cross_entropy(x_hat.view(-1, pixels), x.view(-1, pixels)) * pixels
    if penalties["cont"] is not None:
        mean, logvar = dist["cont"]
        kl_cont = (-0.5 * (1 + logvar - mean.pow(2) - logvar.exp())).mean(dim=0).sum()
        loss = loss + kl_penalty(kl_cont, *penalties["cont"])
    if penalties["disc"] is not None:
        kl_disc = sum(math.log(a.shape[1]) + (a * torch.log(a + EPS)).sum(dim=1).mean() for a in dist["disc"])
        loss = loss + kl_penalty(kl_disc, *penalties["disc"])
    if tc_penalty is not None:
        loss = loss + tc_penalty
    return loss / pixels


def kl_penalty(kl, capacity, weight):
    """weight * |KL - C| (JointVAE's capacity), or weight * KL where there is no capacity (β-VAE, FactorVAE)."""
    return weight * (kl if capacity is None else torch.abs(kl - capacity))


def to_torch(array, device):
    """A NumPy or CuPy array -> a torch tensor on `device` ('cpu' or 'cuda'), copied through the host."""
    return torch.as_tensor(refnet.to_numpy(array), device=device)


def noise_to_torch(noise, device):
    """draw_noise's {'eps': array or None, 'u': [array]} -> the same structure of tensors."""
    return {"eps": None if noise["eps"] is None else to_torch(noise["eps"], device),
            "u": [to_torch(u, device) for u in noise["u"]]}


def copy_weights(module, layer, device):
    """Load our refnet `layer`'s parameters into the torch `module` by name (strictly) -> the module on `device`."""
    module.load_state_dict({name: to_torch(value, "cpu") for name, value in layer.params.items()}, strict=True)
    return module.to(device)


def from_refnet(model, device):
    """A TorchJointVAE shaped like our JointVAE `model`, holding a copy of its weights, on `device`."""
    return copy_weights(TorchJointVAE(model.image_shape, model.latent_spec, model.temperature), model, device)


def full_float32():
    """Keep cuDNN and cuBLAS in true float32 (no TF32), the arithmetic CuPy does: the same computation."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
