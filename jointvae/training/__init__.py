"""Training: the loop, its log and checkpoints, and the GPU's captured step.

    trainer.py         Trainer: data order, noise, the training step, logging, progress, resume
    checkpoint.py      checkpoint.npz: parameters, optimiser states and the step, written atomically
    stopping.py        SIGINT / SIGTERM / SIGUSR1: finish the step, checkpoint, exit 128 + the signal
    memory_check.py    will a step at this batch size fit in memory? (asked before anything is written)
    static_step.py     the step over fixed buffers on our kernels (what a CUDA graph can replay)
    step_inputs.py     a step's small inputs (noise, permutations, C(t), Adam's scalars) sent in one copy
    captured_step.py   that step captured once as a CUDA graph and replayed every step
"""
