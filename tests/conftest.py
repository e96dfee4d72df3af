import os

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
