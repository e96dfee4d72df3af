"""One training step as a fixed program over fixed buffers: the form a CUDA graph can capture and replay.

A CUDA graph replays the kernels of one captured step with their arguments as they were: the same
addresses, the same scalar values. So everything that changes from step to step lives in a buffer
whose address never changes, written on the host before each step:

    x, x_other               the batch, and FactorVAE's second batch                      (N, C, H, W)
    and, in one block of step inputs (step_inputs.py: filled on the host, sent in one copy):
    noise, noise_other       eps (N, cont), u [(N, K_i)], drawn from the run's NumPy generator
    permutations             FactorVAE's, one int64 (N,) per latent block
    capacities               C_cont(t), C_disc(t)                                         0-d
    optimizer.step_scalars   each Adam's lr / (1 - beta1^t) and sqrt(1 - beta2^t)         (2,)

and the step reads them, never a Python number that changes. Parameters, gradients and Adam's
moments are flat buffers (refnet/flat.py), so each optimiser update is one launch of kernels/adam.cu.

    step = StaticStep(model, spec, networks, seed, batch_size, other_batch_size, discriminator)
    step.write(t, x, x_other)          # host: this step's randomness, capacities, Adam's scalars
    stats = step.run()                 # device: forward, backward, FactorVAE's D, both Adam updates

On NumPy, write + run give exactly Trainer.train_step's numbers (tests/test_static_step.py); on CuPy,
run() is what jointvae/training/captured_step.py captures once and replays.
"""
import numpy as np

import kernels
import refnet

from ..models import factorvae, objective
from ..models.jointvae import draw_noise
from .step_inputs import StepInputs, fill_noise, noise_fields, noise_views


class FlatNetwork:
    """A network trained on flat buffers: its parameters are views of one buffer, Adam's moments two more,
    and the gradients are gathered into a fourth before the one-launch update."""

    def __init__(self, layer, optimizer):
        self.layer = layer
        self.params, self.layout = refnet.flatten_params(layer)
        xp = refnet.get_array_module(self.params)
        self.grads = xp.empty_like(self.params)
        self.optimizer = refnet.Adam(optimizer.lr, optimizer.betas, optimizer.eps, optimizer.weight_decay,
                                     layout=self.layout)
        self.optimizer.load_state_dict(optimizer.state_dict(), device_like=layer.params)   # a resumed run's moments

    def update(self, grads):
        """Adam's update of every parameter from grads {name: array}, with the step's scalars (count_step)."""
        self.layout.gather(grads, out=self.grads)
        self.optimizer.apply_flat(self.params, self.grads, update=kernels.adam_update)


def write(buffer, host):
    """Copy a host array (or number) into a device buffer in place: the buffer keeps its address."""
    buffer[...] = refnet.get_array_module(buffer).asarray(host, dtype=buffer.dtype)


class StaticStep:
    """Trainer.train_step over fixed buffers, for one batch size (and one second-batch size)."""

    def __init__(self, model, spec, networks, seed, batch_size, other_batch_size=None, discriminator=None):
        self.model, self.spec, self.networks, self.seed = model, spec, networks, int(seed)
        self.discriminator = discriminator
        xp = refnet.get_array_module(networks["model"].params)
        dtype = networks["model"].params.dtype
        self.x = xp.zeros((batch_size,) + model.image_shape, dtype=dtype)
        shapes = draw_noise(model, batch_size, np.random.default_rng(0), np, dtype)   # for the shapes only
        fields = {**noise_fields("", shapes), "C_cont": ((), dtype), "C_disc": ((), dtype),
                  **{f"adam.{name}": ((2,), network.params.dtype) for name, network in networks.items()}}
        if discriminator is not None:
            self.x_other = xp.zeros((other_batch_size,) + model.image_shape, dtype=dtype)
            shapes_other, permutations = factorvae.draw_discriminator_inputs(
                model, other_batch_size, np.random.default_rng(0))
            fields.update(noise_fields("other.", shapes_other))
            fields.update({f"perm.{b}": ((other_batch_size,), np.int64) for b in range(len(permutations))})
        self.inputs = StepInputs(xp, fields)
        device = self.inputs.device
        self.noise = noise_views("", device, shapes)
        self.capacities = {"cont": device["C_cont"], "disc": device["C_disc"]}
        self.host_capacities = {"cont": None, "disc": None}
        # Bound here as well as in run(): a fresh Adam allocates its moments now, outside any capture and its
        # memory pool (captured_step.py copies them before its warm-up run).
        self._bind_step_scalars()
        if discriminator is not None:
            self.noise_other = noise_views("other.", device, shapes_other)
            self.permutations = [device[f"perm.{b}"] for b in range(len(permutations))]

    def write(self, step, x, x_other=None):
        """Host side of step `step`: the batches, the noise and permutations drawn as Trainer.train_step draws
        them (generator (seed, 1, step), in the same order), the capacities C(t) and each Adam's scalars, all
        but the batches sent in one copy."""
        rng = np.random.default_rng([self.seed, 1, step])
        write(self.x, x)
        host = self.inputs.host()
        fill_noise("", host, draw_noise(self.model, len(self.x), rng))
        if self.discriminator is not None:
            write(self.x_other, x_other)
            noise_other, permutations = factorvae.draw_discriminator_inputs(self.model, len(self.x_other), rng)
            fill_noise("other.", host, noise_other)
            for b, permutation in enumerate(permutations):
                host[f"perm.{b}"][...] = permutation
        for part, penalty in objective.kl_penalties(self.spec, step).items():
            self.host_capacities[part] = penalty[0] if penalty is not None else None
            if self.host_capacities[part] is not None:
                host[f"C_{part}"][...] = self.host_capacities[part]
        for name, network in self.networks.items():
            host[f"adam.{name}"][...] = network.optimizer.count_step()
        self.inputs.upload()

    def run(self):
        """Device side: the step from the buffers -> stats (0-d arrays on the device; C_cont, C_disc on the host).

        The order of Trainer.train_step: every gradient at the step's starting parameters, then D's update,
        then the VAE's.
        """
        model, discriminator = self.model, self.discriminator
        self._bind_step_scalars()
        stats, grads, tc_cache = objective.objective_and_grads(model, self.x, self.noise, self.spec, None,
                                                               discriminator, self.capacities)
        if discriminator is not None:
            d_stats, d_grads = factorvae.discriminator_loss_and_grads(
                discriminator, tc_cache, model, self.x_other, self.noise_other, self.permutations)
            stats.update(d_stats)
            self.networks["discriminator"].update(d_grads)
        self.networks["model"].update(grads)
        return stats

    def _bind_step_scalars(self):
        """Each Adam reads its two scalars from this step's input block. The networks are shared with the
        StaticStep of the short last batch, which has a block of its own, so run() binds them again each time
        (a graph keeps the addresses it saw when captured)."""
        for name, network in self.networks.items():
            network.optimizer.read_step_scalars_from(self.inputs.device[f"adam.{name}"])

    def __call__(self, step, x, x_other=None):
        """Step `step` eagerly: write, then run on our kernels (kernels.OPS) -> stats for the log."""
        self.write(step, x, x_other)
        with refnet.use_ops(kernels.OPS):
            return self.stats_for_log(self.run())

    def stats_for_log(self, stats):
        """The step's stats with the capacities as the host computed them (not the device buffers' copies)."""
        return {**stats, "C_cont": self.host_capacities["cont"], "C_disc": self.host_capacities["disc"]}
