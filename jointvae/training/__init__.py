"""Training: the loop, its log and checkpoints.

    trainer.py       Trainer: data order, noise, the training step, logging, resume
    checkpoint.py    checkpoint.npz: parameters, optimiser states and the step, written atomically
"""
