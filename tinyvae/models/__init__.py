"""The models: encoders, decoders and objectives built from tinyvae.nn.

Reading order: likelihood (LikelihoodModel, what every model shares: the decoder, −log p(x|z),
the ELBO's batch bookkeeping), vae (the VAE), autoencoder (plain, denoising, sparse), cvae (the
conditional VAE), iwae (the importance-weighted bound), classifier (softmax regression, used by
m2 and the evaluation), m2 (semi-supervised), registry (the models by name, for the commands).
"""

from tinyvae._moved import old_names

__getattr__ = old_names(__name__)          # old paths, kept for one release: tinyvae.models.MODELS, ...
