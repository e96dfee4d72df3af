"""The models: what is computed, from an image batch to a loss and back, and how a model is stored.

    jointvae.py      the JointVAE network (Dupont 2018): forward(x, noise) -> out, cache; backward; draw_noise
    objective.py     the VAE-family loss (JointVAE capacities, β-VAE, FactorVAE's VAE side) and its gradient
    factorvae.py     FactorVAE's discriminator, its total-correlation estimate and its own update
    specs.py         training specs in the published specs.json format, and the presets
    model_folder.py  load_model / save_model: specs.json + weights.npz (or the paper's model.pt)
"""
