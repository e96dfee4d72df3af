"""The PyTorch training step the benchmark times against ours: eager or torch.compile'd, JointVAE or FactorVAE.

    nets = nets_from_refnet(model, discriminator, "cuda")     # {'model': TorchJointVAE[, 'discriminator': MLP]}
    trainer = TorchTrainer(nets, spec, step=t, compile_mode=None)    # or "reduce-overhead", "default"
    trainer.train_step(x[, x_other])     # zero_grad, forward + loss, backward, Adam (and D's Adam)

    losses, grads = loss_and_grads(nets, spec, t, x, noise[, x_other, noise_other, permutations])
                                         # one eager forward and backward with given randomness: the agreement check

The step is Trainer.train_step's: noise drawn on the device (torch.randn_like / rand_like, the permutations
by argsort of uniforms), the objective at step t (capacities C(t) from kl_penalties), FactorVAE's TC and
L_D (bench/torch_factorvae.py), every gradient at the step's starting parameters, then each Adam's step.

torch.compile, as the PyTorch docs show it for training: the forward and loss compiled as one function in the
given mode (AOTAutograd compiles its backward too; mode="reduce-overhead" replays both as CUDA graphs, with
torch.compiler.cudagraph_mark_step_begin() at the start of each step), and the optimiser steps compiled as
another, as the recipe "Compiling the optimizer with torch.compile" does (default mode: a few fused kernels,
no CUDA graph, which would take the backward graph's gradients as inputs from a finished CUDA-graph run).
What changes from step to step enters the compiled function as tensors (the capacities), so it is traced
once, not once per step.
"""
import functools

import torch

from jointvae.models.objective import kl_penalties

from . import torch_factorvae
from .torch_jointvae import copy_weights, from_refnet, full_float32, noise_to_torch, objective, to_torch

__all__ = ["TorchTrainer", "full_float32", "loss_and_grads", "nets_from_refnet", "noise_to_torch", "to_torch",
           "torch"]


def nets_from_refnet(model, discriminator, device):
    """{'model': TorchJointVAE[, 'discriminator': its MLP]} holding copies of our networks' weights, on `device`."""
    nets = {"model": from_refnet(model, device)}
    if discriminator is not None:
        mlp = torch_factorvae.make_discriminator(model.latent_dim, *discriminator_shape(discriminator))
        nets["discriminator"] = copy_weights(mlp, discriminator, device)
    return nets


def discriminator_shape(discriminator):
    """Our discriminator (refnet Sequential) -> (hidden width, number of hidden layers)."""
    weights = [name for name in discriminator.params if name.endswith(".weight")]
    return discriminator.params[weights[0]].shape[0], len(weights) - 1


def step_losses(nets, spec, penalties, x, noise=None, x_other=None, noise_other=None, permutations=None,
                shared_logits=True):
    """The forward of one step -> {'objective': the VAE's[, 'd_loss': L_D]}, 0-d tensors.

    penalties: kl_penalties' form; noise, noise_other, permutations: given (the agreement check) or None
    (drawn on the device); shared_logits: the form of D(z) (bench/torch_factorvae.py).
    """
    net, discriminator = nets["model"], nets.get("discriminator")
    x_hat, dist, z = net(x, noise)
    if discriminator is None:
        return {"objective": objective(net, x, x_hat, dist, penalties)}
    tc, d_loss = torch_factorvae.tc_and_discriminator_loss(discriminator, net, z, x_other, noise_other,
                                                           permutations, shared_logits)
    return {"objective": objective(net, x, x_hat, dist, penalties, spec["tc_gamma"] * tc), "d_loss": d_loss}


def backward(nets, losses, shared_logits=True):
    """Every parameter's gradient: the objective's for the VAE, L_D's for the discriminator."""
    if "d_loss" not in losses:
        losses["objective"].backward()
    elif shared_logits:   # the two losses share D(z): two passes, each for its own parameters
        losses["objective"].backward(inputs=list(nets["model"].parameters()), retain_graph=True)
        losses["d_loss"].backward(inputs=list(nets["discriminator"].parameters()))
    else:                 # each loss sees only its own parameters already: one pass
        (losses["objective"] + losses["d_loss"]).backward()


def named_grads(nets):
    """{name: gradient} of every network, the discriminator's names prefixed 'discriminator.'."""
    grads = {name: p.grad for name, p in nets["model"].named_parameters()}
    if "discriminator" in nets:
        grads.update({f"discriminator.{name}": p.grad for name, p in nets["discriminator"].named_parameters()})
    return grads


def loss_and_grads(nets, spec, step, x, noise, x_other=None, noise_other=None, permutations=None,
                   shared_logits=True):
    """One eager forward and backward at step `step` with the given randomness (as tensors)
    -> ({'objective': float[, 'd_loss': float]}, {name: gradient tensor})."""
    for net in nets.values():
        net.zero_grad(set_to_none=True)
    losses = step_losses(nets, spec, kl_penalties(spec, step), x, noise, x_other, noise_other, permutations,
                         shared_logits)
    backward(nets, losses, shared_logits)
    return {name: float(value.detach()) for name, value in losses.items()}, named_grads(nets)




class TorchTrainer:
    """One training step with PyTorch: eager (compile_mode None) or torch.compile(..., mode=compile_mode)."""

    def __init__(self, nets, spec, step=0, compile_mode=None):
        self.nets, self.spec, self.step = nets, spec, step
        self.compiled = compile_mode is not None
        self.optimizers = [torch.optim.Adam(nets["model"].parameters(), lr=spec["lr"][0],
                                            betas=tuple(spec.get("betas", (0.9, 0.999))))]
        if "discriminator" in nets:
            self.optimizers.append(torch.optim.Adam(nets["discriminator"].parameters(), lr=spec["d_lr"],
                                                    betas=tuple(spec["d_betas"])))
        forward = functools.partial(step_losses, nets, spec, shared_logits=not self.compiled)
        self.forward = torch.compile(forward, mode=compile_mode) if self.compiled else forward
        self.update = torch.compile(self.optimizer_steps) if self.compiled else self.optimizer_steps

    def optimizer_steps(self):
        for optimizer in self.optimizers:
            optimizer.step()

    def penalties(self, device):
        """kl_penalties at this step; compiled, each capacity C(t) as a 0-d tensor (an input, not a constant)."""
        penalties = kl_penalties(self.spec, self.step)
        if not self.compiled:
            return penalties
        return {part: None if p is None else (None if p[0] is None else torch.tensor(p[0], device=device), p[1])
                for part, p in penalties.items()}

    def train_step(self, x, x_other=None):
        """One optimisation step on a float batch x (N, C, H, W) (and FactorVAE's second batch x_other)
        -> the objective (a 0-d tensor)."""
        self.step += 1
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        losses = self.forward(self.penalties(x.device), x, x_other=x_other)
        backward(self.nets, losses, shared_logits=not self.compiled)
        self.update()
        return losses["objective"].detach()
