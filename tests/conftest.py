import os

import numpy as np
import pytest

from verify import hypothesis_settings


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU (skipped otherwise)")
    config.addinivalue_line("markers", "slurm: starts a one-node SLURM cluster (needs root, slurm-wlm, munge, "
                                       "submitit; skipped otherwise)")


@pytest.fixture(scope="session")
def hyp_settings():
    """The verify suite's hypothesis settings: VERIFY_PROFILE if set, else 'ci' (derandomized) under CI."""
    default = "ci" if os.environ.get("CI") else "default"
    return hypothesis_settings(os.environ.get("VERIFY_PROFILE", default))


def write_square_images(folder, count):
    """`count` grey 32 x 32 PNGs in `folder`, a bright 10 x 10 square each at a seeded place: a tiny image folder
    dataset for training runs in tests."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        a = np.zeros((32, 32), np.uint8)
        x, y = rng.integers(2, 22, 2)
        a[y:y + 10, x:x + 10] = 255
        Image.fromarray(a).save(os.path.join(folder, f"{i:02d}.png"))
