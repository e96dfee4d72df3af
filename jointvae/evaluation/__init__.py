"""Evaluation of a trained model: what it scores and what it shows. Imports the data and model modules,
never the trainer or a CLI module.

    scores.py      recon loss, KL per unit and category accuracy on images; disentanglement of a model
    metrics.py     FactorVAE, beta-VAE and MIG of any represent(images) -> codes
    pictures.py    every picture: reconstructions, prior samples, traversals, training frames, the KL plot
    inspection.py  the eval-mode codes of images, choosing one latent and setting or reading it (edit, infer)
    directions.py  where a factor lies in a code: the direction in which the units move with it
    report.py      the markdown table of a comparison of scored runs
    progress.py    time-based progress lines (rate, ETA) of a long encoding
"""
