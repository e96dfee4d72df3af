"""Sweeps: a grid of training runs from one sweep file, run, resumed, evaluated and collected.

    sweep_file.py   read, check and expand a sweep file into points with stable names
    runs.py         one point: its folder, its state, run_one (train or resume, then evaluate)
    local.py        LocalEngine: worker processes on this machine, a live progress table
    engines.py      ENGINES: local, and slurm (slurm.py, imported only when asked for)
    slurm.py        SlurmEngine: one SLURM job array through submitit, requeued on its time-limit signal
    screen.py       --screen: score every point on the training split, keep the best K
    collect.py      the table per setting (median, IQR, each seed) as Markdown and CSV, a PNG plot, a scatter
    export.py       the best run of each setting as a model folder (specs.json, weights.npz, pictures, README)
"""
