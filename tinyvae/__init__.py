"""tinyvae: a Variational Autoencoder from scratch, NumPy on the CPU and CuPy on the GPU.

The layers, from the bottom up (each module imports only those above it in this list):

    backend      get_backend("cpu" | "gpu" | "auto"): the only module that knows CuPy
    params       the flat parameter and gradient buffers
    base, layers, activations   Linear, ReLU, ..., Sequential, mlp — forward and backward
    im2col, conv Conv2d and ConvTranspose2d (its adjoint): im2col by strided views + one matrix product
    conv_kernels col2im's scatter-add as one compiled loop (Numba), the CPU twin of its NumPy reference
    losses       Bernoulli / Gaussian negative log-likelihoods, the Gaussian KL
    reparam      z = mu + exp(½·logvar)·eps and its backward
    likelihood   what every model shares: the batch check, the decoder and −log p(x|z)
    vae          the model: encode, decode, sample, reconstruct, loss_and_grads
    cpu_kernels  Adam's update as one compiled pass (Numba), the CPU twin of its NumPy reference
    optim        SGD with momentum, Adam
    gradcheck    numerical gradients and rel_error, for tests, notebooks and assignments
    cvae, autoencoder, models, annealing   the conditional VAE, plain/denoising/sparse autoencoders,
                 the model registry, KL schedules
    fast         the fast twins, chosen in one place per backend: fast.cuda_kernels (CUDA
                 kernels, compiled by CuPy on the GPU and by NVRTC and the host compiler in the tests)
    doctor       `python -m tinyvae.doctor`: is this machine ready to train?
    idx, download, data    IDX files, checked downloads, MNIST / Fashion-MNIST / digits
    checkpoint, fileio     atomic files, checkpoints, tinyvae.load(path)
    metrics, classifier    L_k, active units, Fréchet distance; the softmax classifier
    viz, figures, trainer  figures, and the loop behind `python -m tinyvae.train`
    cli, train, evaluate, anomaly, latent, sweep, benchmark, conv_benchmark   the command-line tools
"""

from tinyvae.autoencoder import Autoencoder
from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.checkpoint import load
from tinyvae.cvae import ConditionalVAE
from tinyvae.data import Dataset, load_dataset
from tinyvae.gradcheck import numerical_gradient, rel_error
from tinyvae.optim import SGD, Adam
from tinyvae.params import Parameters
from tinyvae.vae import ELBO, VAE

__version__ = "0.1.0"

__all__ = ["Adam", "Autoencoder", "Backend", "BackendError", "ConditionalVAE", "ELBO", "Parameters", "SGD", "VAE",
           "get_backend",
           "load", "load_dataset", "Dataset", "numerical_gradient", "rel_error", "__version__"]
