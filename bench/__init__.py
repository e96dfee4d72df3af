"""Benchmarks: how fast our hand-written training step runs next to PyTorch's autograd doing the same work.

    python -m bench.train_step --device cpu     # see bench/README.md

bench/ is the only place in the project that may import torch: torch_jointvae.py and
torch_factorvae.py hold the PyTorch JointVAE and FactorVAE discriminator, torch_step.py the step
(eager or torch.compile'd) ours is compared with. Nothing outside bench/
imports from here, so the project itself stays torch-free.
"""
