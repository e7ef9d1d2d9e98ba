"""Looking at a trained model: numbers, pictures and comparisons.

Reading order: metrics (the importance-sampled log-likelihood L_k, active units, Fréchet
distance), viz (image grids and plots), figures (the figures of a run), latent (interpolation
and traversals, ``python -m tinyvae.analysis.latent``), anomaly (scores and ROC,
``python -m tinyvae.analysis.anomaly``), sweep (several runs side by side,
``python -m tinyvae.analysis.sweep``).
"""
