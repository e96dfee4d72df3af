"""checkpoint.npz: everything --resume needs, in one file written atomically.

    param.<name>    the VAE's parameters            d_param.<name>   FactorVAE's discriminator, if any
    adam.<key>      its Adam state (refnet.Adam)    d_adam.<key>     the discriminator's Adam state
    step            training steps completed (int64)

A run's randomness is derived from (seed, step), so these arrays and the step are the whole state:
a resumed run replays exactly what an uninterrupted one would have done.
"""
import numpy as np

import refnet

# Each trained network: (parameter prefix, optimiser prefix) in the file.
PREFIXES = {"model": ("param.", "adam."), "discriminator": ("d_param.", "d_adam.")}


def save_checkpoint(path, step, trained):
    """trained {'model': (layer, optimizer), 'discriminator': (layer, optimizer)} -> path, atomically."""
    state = {}
    for name, (layer, optimizer) in trained.items():
        param_prefix, adam_prefix = PREFIXES[name]
        state.update({f"{param_prefix}{k}": v for k, v in layer.params.items()})
        state.update({f"{adam_prefix}{k}": v for k, v in optimizer.state_dict().items()})
    state["step"] = np.array(step, dtype=np.int64)
    refnet.save_npz(path, state)


def load_checkpoint(path, trained, xp=np):
    """Restore each (layer, optimizer) of `trained` from path, on xp's device; -> the step.

    Raises ValueError naming the file when it does not hold this run's networks.
    """
    state = refnet.load_npz(path)
    step = checked_step(path, state)
    try:
        for name, (layer, optimizer) in trained.items():
            param_prefix, adam_prefix = PREFIXES[name]
            layer.set_params({k[len(param_prefix):]: xp.asarray(v) for k, v in state.items()
                              if k.startswith(param_prefix)})
            optimizer.load_state_dict({k[len(adam_prefix):]: v for k, v in state.items()
                                       if k.startswith(adam_prefix)}, device_like=layer.params)
        return step
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: does not match this run's model ({e})") from None


MAX_STEP = 10**9   # far beyond any run here (the longest preset has 311k steps)


def checked_step(path, state):
    """The checkpoint's step: a whole number in [0, MAX_STEP], equal to the VAE's Adam step count (each
    training step is one Adam step), else ValueError naming the file."""
    step = state.get("step")
    if step is None or step.shape != () or step.dtype.kind not in "iu" or not 0 <= int(step) <= MAX_STEP:
        raise ValueError(f"{path}: 'step' must be one integer in [0, {MAX_STEP}], got "
                         f"{'nothing' if step is None else f'{step.dtype} {step.shape} {step.tolist()}'}")
    adam_step = state.get(f"{PREFIXES['model'][1]}step")
    if adam_step is not None and adam_step.tolist() != int(step):
        raise ValueError(f"{path}: 'step' {int(step)} disagrees with the optimiser's step count {adam_step.tolist()}")
    return int(step)
