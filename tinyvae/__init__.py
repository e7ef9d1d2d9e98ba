"""tinyvae: a Variational Autoencoder from scratch, NumPy on the CPU and CuPy on the GPU.

The layers, from the bottom up (each module imports only those above it in this list):

    backend      get_backend("cpu" | "gpu" | "auto"): the only module that knows CuPy
    params       the flat parameter and gradient buffers
    base, layers, activations   Linear, ReLU, ..., Sequential, mlp — forward and backward
    losses       Bernoulli / Gaussian negative log-likelihoods, the Gaussian KL
    reparam      z = mu + exp(½·logvar)·eps and its backward
    vae          the model: encode, decode, sample, reconstruct, loss_and_grads
    optim        SGD with momentum, Adam
    gradcheck    numerical gradients and rel_error, for tests, notebooks and assignments
    idx, download, data    IDX files, checked downloads, MNIST / Fashion-MNIST / digits
    checkpoint, fileio     atomic files, checkpoints, tinyvae.load(path)
    viz, trainer           figures, and the loop behind `python -m tinyvae.train`
    metrics, classifier, evaluate   L_k, active units, Fréchet distance; `python -m tinyvae.evaluate`
"""

from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.checkpoint import load
from tinyvae.data import Dataset, load_dataset
from tinyvae.gradcheck import numerical_gradient, rel_error
from tinyvae.optim import SGD, Adam
from tinyvae.params import Parameters
from tinyvae.vae import ELBO, VAE

__version__ = "0.1.0"

__all__ = ["Adam", "Backend", "BackendError", "ELBO", "Parameters", "SGD", "VAE", "get_backend",
           "load", "load_dataset", "Dataset", "numerical_gradient", "rel_error", "__version__"]
