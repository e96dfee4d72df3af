"""One training step as a fixed program over fixed buffers: the form a CUDA graph can capture and replay.

A CUDA graph replays the kernels of one captured step with their arguments as they were: the same
addresses, the same scalar values. So everything that changes from step to step lives in a buffer
whose address never changes, written on the host before each step:

    x, x_other               the batch, and FactorVAE's second batch                      (N, C, H, W)
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
        """Adam's update of every parameter from grads {name: array}, with the scalars advance() wrote."""
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
        self.noise = draw_noise(model, batch_size, np.random.default_rng(0), xp, dtype)   # shapes; overwritten
        self.capacities = {"cont": xp.zeros((), dtype=dtype), "disc": xp.zeros((), dtype=dtype)}
        self.host_capacities = {"cont": None, "disc": None}
        if discriminator is not None:
            self.x_other = xp.zeros((other_batch_size,) + model.image_shape, dtype=dtype)
            self.noise_other, permutations = factorvae.draw_discriminator_inputs(
                model, other_batch_size, np.random.default_rng(0), xp)
            self.permutations = [xp.asarray(p, dtype=np.int64) for p in permutations]

    def write(self, step, x, x_other=None):
        """Host side of step `step`: the batches, the noise and permutations drawn as Trainer.train_step draws
        them (generator (seed, 1, step), in the same order), the capacities C(t) and each Adam's scalars."""
        rng = np.random.default_rng([self.seed, 1, step])
        write(self.x, x)
        host_noise = draw_noise(self.model, len(self.x), rng)
        self._write_noise(self.noise, host_noise)
        if self.discriminator is not None:
            write(self.x_other, x_other)
            noise_other, permutations = factorvae.draw_discriminator_inputs(self.model, len(self.x_other), rng)
            self._write_noise(self.noise_other, noise_other)
            for buffer, permutation in zip(self.permutations, permutations):
                write(buffer, permutation)
        for part, penalty in objective.kl_penalties(self.spec, step).items():
            self.host_capacities[part] = penalty[0] if penalty is not None else None
            if self.host_capacities[part] is not None:
                write(self.capacities[part], self.host_capacities[part])
        for network in self.networks.values():
            network.optimizer.advance(network.params)

    @staticmethod
    def _write_noise(buffers, host):
        if host["eps"] is not None:
            write(buffers["eps"], host["eps"])
        for buffer, u in zip(buffers["u"], host["u"]):
            write(buffer, u)

    def run(self):
        """Device side: the step from the buffers -> stats (0-d arrays on the device; C_cont, C_disc on the host).

        The order of Trainer.train_step: every gradient at the step's starting parameters, then D's update,
        then the VAE's.
        """
        model, discriminator = self.model, self.discriminator
        stats, grads, tc_cache = objective.objective_and_grads(model, self.x, self.noise, self.spec, None,
                                                               discriminator, self.capacities)
        if discriminator is not None:
            d_stats, d_grads = factorvae.discriminator_loss_and_grads(
                discriminator, tc_cache, model, self.x_other, self.noise_other, self.permutations)
            stats.update(d_stats)
            self.networks["discriminator"].update(d_grads)
        self.networks["model"].update(grads)
        return stats

    def __call__(self, step, x, x_other=None):
        """Step `step` eagerly: write, then run on our kernels (kernels.OPS) -> stats for the log."""
        self.write(step, x, x_other)
        with refnet.use_ops(kernels.OPS):
            return self.stats_for_log(self.run())

    def stats_for_log(self, stats):
        """The step's stats with the capacities as the host computed them (not the device buffers' copies)."""
        return {**stats, "C_cont": self.host_capacities["cont"], "C_disc": self.host_capacities["disc"]}
