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
    try:
        for name, (layer, optimizer) in trained.items():
            param_prefix, adam_prefix = PREFIXES[name]
            layer.set_params({k[len(param_prefix):]: xp.asarray(v) for k, v in state.items()
                              if k.startswith(param_prefix)})
            optimizer.load_state_dict({k[len(adam_prefix):]: v for k, v in state.items()
                                       if k.startswith(adam_prefix)}, device_like=layer.params)
        return int(state["step"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: does not match this run's model ({e})") from None
