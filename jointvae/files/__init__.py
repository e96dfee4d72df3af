"""File formats from outside the project, read safely.

    legacy_torch.py    the paper's 2018 torch.save files (model.pt), read without torch
    safe_unpickle.py   a pickle reader that builds only the objects on an allowlist
"""
