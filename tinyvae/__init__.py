"""tinyvae: a Variational Autoencoder from scratch, NumPy on the CPU and CuPy on the GPU.

The packages, from the bottom up (each imports only those above it; docs/map.md has one line
per module, in reading order):

    backend      get_backend("cpu" | "gpu" | "auto"): the only module that knows CuPy
    nn           the layers and their maths: the flat parameters, Linear, activations, Conv2d and
                 ConvTranspose2d (im2col), the losses, the reparameterization, gradient checks
    fast         the fast twins (Numba on the CPU, CUDA kernels on the GPU), chosen in one place
                 per backend, each tested equal to its reference in nn/ or training/
    models       the model base (likelihood), VAE, autoencoders, CVAE, IWAE, M2, classifier, registry
    training     Adam and SGD, KL annealing, atomic files, checkpoints, run folders, the Trainer
    data         IDX files, checked downloads, MNIST / Fashion-MNIST / the bundled digits
    analysis     metrics (L_k, active units, FID), latent-space tools, anomaly scores, figures, sweeps
    cli, train, evaluate, benchmark, conv_benchmark, doctor, site   the command-line tools
    assignments  the course's assignments: the student release, the sandboxed grader

Old module paths (tinyvae.vae, tinyvae.layers, ...) still import, for one release (_moved.py).
"""

from tinyvae import _moved
from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.data.loading import Dataset, load_dataset
from tinyvae.models.autoencoder import Autoencoder
from tinyvae.models.cvae import ConditionalVAE
from tinyvae.models.vae import ELBO, VAE
from tinyvae.nn.gradcheck import numerical_gradient, rel_error
from tinyvae.nn.params import Parameters
from tinyvae.training.checkpoint import load
from tinyvae.training.optim import SGD, Adam

__version__ = "0.1.0"

_moved.install()                  # old paths (tinyvae.vae, ...), kept for one release

__all__ = ["Adam", "Autoencoder", "Backend", "BackendError", "ConditionalVAE", "ELBO", "Parameters", "SGD", "VAE",
           "get_backend",
           "load", "load_dataset", "Dataset", "numerical_gradient", "rel_error", "__version__"]
