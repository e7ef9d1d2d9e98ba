"""Negative twins: plant a realistic bug and show the SAME check used by the gradient tests
reports failure. A check that cannot fail proves nothing."""

import numpy as np
import pytest
import test_optim
from conftest import away_from_zero

import tinyvae.iwae as iwae_module
import tinyvae.vae
from tinyvae import VAE, Adam, cpu_kernels
from tinyvae.activations import ReLU, Sigmoid
from tinyvae.backend import array_module, get_backend
from tinyvae.gradcheck import check_layer, check_model, numerical_gradient, rel_error
from tinyvae.iwae import IWAE
from tinyvae.layers import Linear
from tinyvae.losses import gaussian_kl
from tinyvae.params import Parameters
from tinyvae.reparam import Reparameterize

FAILS = 1e-3   # every planted bug below misses by far more than this; tolerances are 1e-6 and 1e-8


def small_model(rng):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, dtype="float64", seed=2, beta=0.7)
    x = rng.random((5, 12))
    eps = rng.standard_normal((5, 3))
    return model, x, eps


def test_dropped_half_in_kl_gradient_is_caught(rng, monkeypatch):
    def kl_without_half(mu, logvar):
        kl, dmu, _ = gaussian_kl(mu, logvar)
        return kl, dmu, np.exp(logvar) - 1.0               # BUG: should be ½(e^logvar − 1)

    model, x, eps = small_model(rng)
    model._gaussian_kl = kl_without_half
    assert max(check_model(model, x, eps).values()) > FAILS


def test_sampler_using_exp_logvar_is_caught(rng):
    class WrongStd(Reparameterize):
        def forward(self, mu, logvar, eps=None, rng=None):
            self.eps, self.std = eps, np.exp(logvar)       # BUG: std = exp(logvar), not exp(½·logvar)
            return mu + self.std * eps

    model, x, eps = small_model(rng)
    model.reparam = WrongStd()
    assert max(check_model(model, x, eps).values()) > FAILS


def test_reparam_backward_without_half_is_caught(rng):
    class NoHalf(Reparameterize):
        def backward(self, dz):
            return dz, dz * self.std * self.eps            # BUG: missing ½

    model, x, eps = small_model(rng)
    model.reparam = NoHalf()
    assert max(check_model(model, x, eps).values()) > FAILS


def test_transposed_weight_gradient_is_caught(rng):
    class TransposedLinear(Linear):
        def backward(self, dy):
            self.dW[...] = (self.x.T @ dy).T               # BUG: transposed (shapes agree: square)
            self.db[...] = dy.sum(axis=0)
            return dy @ self.W.T

    layer = TransposedLinear(5, 5)
    Parameters({"fc": layer}, dtype="float64", seed=0)
    errors = check_layer(layer, rng.standard_normal((4, 5)))
    assert errors["W"] > FAILS and errors["x"] < 1e-8     # the check points at the right array


def test_sign_flipped_bce_gradient_is_caught(rng, monkeypatch):
    from tinyvae.losses import bernoulli_nll

    def flipped(logits, x):
        nll, dlogits = bernoulli_nll(logits, x)
        return nll, -dlogits                               # BUG: x − σ(l)

    model, x, eps = small_model(rng)
    model._bernoulli_nll = flipped
    assert max(check_model(model, x, eps).values()) > FAILS


def test_relu_passing_every_gradient_is_caught(rng):
    class LeakyBug(ReLU):
        def backward(self, dy):
            return dy                                      # BUG: forgets the mask

    x = away_from_zero(rng.standard_normal((4, 6)))
    assert check_layer(LeakyBug(), x)["x"] > FAILS


def test_sigmoid_missing_factor_is_caught(rng):
    class HalfDerivative(Sigmoid):
        def backward(self, dy):
            return dy * self.y                             # BUG: σ' = σ(1 − σ), not σ

    assert check_layer(HalfDerivative(), rng.standard_normal((4, 6)))["x"] > FAILS


def test_adam_without_bias_correction_is_caught():
    class NoBiasCorrection(Adam):
        def step(self):
            self.t += 1
            self._update(self.params.data, self.params.grad, self.m, self.v, self._tmp, self.lr, self.eps)

    hyper = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    assert test_optim.adam_max_error(Adam, get_backend("cpu"), **hyper) <= 1e-7
    assert test_optim.adam_max_error(NoBiasCorrection, get_backend("cpu"), **hyper) > 1e-4


def test_fused_adam_with_its_betas_mixed_up_is_caught(monkeypatch):
    def swapped(theta, g, m, v, lr_t, eps_t, c1, c2):
        cpu_kernels.adam_update(theta, g, m, v, lr_t, eps_t, c2, c1)   # BUG: 1 − β₂ where 1 − β₁ belongs

    hyper = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    monkeypatch.setattr(Adam, "__init__", test_optim.with_kernel(swapped))
    assert test_optim.adam_max_error(Adam, get_backend("cpu"), **hyper) > 1e-4
    monkeypatch.setattr(Adam, "__init__", test_optim.with_kernel(cpu_kernels.adam_update))
    assert test_optim.adam_max_error(Adam, get_backend("cpu"), **hyper) <= 1e-7


@pytest.mark.parametrize("bug", ["bias-gradient-not-summed", "accumulating"])
def test_linear_bias_and_accumulation_bugs_are_caught(rng, bug):
    class Buggy(Linear):
        def backward(self, dy):
            xp = array_module(dy)
            if bug == "accumulating":
                self.dW += self.x.T @ dy                   # BUG: accumulates across calls
            else:
                self.dW[...] = self.x.T @ dy
            self.db[...] = dy[0] if bug != "accumulating" else dy.sum(axis=0)  # BUG: first row only
            return xp.dot(dy, self.W.T)

    layer = Buggy(4, 3)
    Parameters({"fc": layer}, dtype="float64", seed=0)
    x = rng.standard_normal((5, 4))
    if bug == "accumulating":
        layer.forward(x)
        layer.backward(np.ones((5, 3)))                    # a stale gradient left behind
    errors = check_layer(layer, x)
    assert max(errors["W"], errors["b"]) > FAILS


# --- the VAE's family (docs/family.md): β, KL annealing, free bits, the CVAE, the autoencoders ------------

def family_vae(rng, **kwargs):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=4, activation="tanh", dtype="float64", seed=2, **kwargs)
    return model, rng.random((6, 12)), rng.standard_normal((6, 4))


def test_beta_only_in_the_value_is_caught(rng):
    class BetaOnlyInValue(VAE):
        def backward(self):
            beta, self.beta = self.beta, 1.0               # BUG: the gradient ignores β
            try:
                super().backward()
            finally:
                self.beta = beta

    model = BetaOnlyInValue(input_dim=12, hidden=(8,), latent_dim=3, dtype="float64", seed=2, beta=4.0)
    assert max(check_model(model, rng.random((5, 12)), rng.standard_normal((5, 3))).values()) > FAILS


def test_kl_weight_only_in_the_value_is_caught(rng):
    class WeightOnlyInValue(VAE):
        def forward(self, x, eps=None, check_finite=True, labels=None):
            weight, self.kl_weight = self.kl_weight, 1.0   # BUG: KL gradient cached at weight 1
            try:
                return super().forward(x, eps, check_finite, labels)
            finally:
                self.kl_weight = weight

    model = WeightOnlyInValue(input_dim=12, hidden=(8,), latent_dim=3, dtype="float64", seed=2)
    model.kl_weight = 0.2
    assert max(check_model(model, rng.random((5, 12)), rng.standard_normal((5, 3))).values()) > FAILS


def test_free_bits_without_the_mask_is_caught(rng, monkeypatch):
    from tinyvae.losses import free_bits_kl

    def unmasked(mu, logvar, free_bits):
        value, _, _ = free_bits_kl(mu, logvar, free_bits)
        _, dmu, dlogvar = gaussian_kl(mu, logvar)
        return value, dmu, dlogvar                         # BUG: free dimensions still get the KL gradient

    mu, logvar = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    lam = 0.6
    errors = [rel_error(unmasked(mu, logvar, lam)[i], numerical_gradient(
        lambda: float(free_bits_kl(mu, logvar, lam)[0].sum()), a)) for i, a in ((1, mu), (2, logvar))]
    assert max(errors) > FAILS
    monkeypatch.setattr(tinyvae.vae, "free_bits_kl", unmasked)
    model, x, eps = family_vae(rng, free_bits=0.05)
    assert max(check_model(model, x, eps).values()) > FAILS


def test_cvae_passing_the_label_columns_back_is_caught(rng, monkeypatch):
    import tinyvae.cvae

    class LastColumns(tinyvae.cvae.AppendLabels):
        def backward(self, dy):
            return None if dy is None else dy[:, -self.d:]  # BUG: the last D columns, labels included

    monkeypatch.setattr(tinyvae.cvae, "AppendLabels", LastColumns)
    model = tinyvae.cvae.ConditionalVAE(input_dim=12, hidden=(8,), latent_dim=3, n_classes=4, dtype="float64", seed=2)
    errors = check_model(model, rng.random((6, 12)), rng.standard_normal((6, 3)), labels=np.array([0, 1, 2, 3, 0, 1]))
    assert max(errors.values()) > FAILS


def test_iwae_with_unnormalised_weights_is_caught(rng, monkeypatch):
    weights = iwae_module.importance_weights

    def uniform(log_w):
        bound, _ = weights(log_w)
        return bound, np.full_like(log_w, 1.0 / log_w.shape[0])      # BUG: 1/K instead of w̃ (the "K-sample VAE")

    monkeypatch.setattr(iwae_module, "importance_weights", uniform)
    model = IWAE(input_dim=12, hidden=(8,), latent_dim=3, dtype="float64", seed=2, k=4)
    assert max(check_model(model, rng.random((5, 12)), model.draw_noise(rng, 5)).values()) > FAILS


def test_iwae_with_a_dropped_log_det_term_is_caught(rng, monkeypatch):
    ratio = iwae_module.log_prior_ratio

    def no_log_det(z, eps, logvar):
        value, dz, dlogvar = ratio(z, eps, logvar)
        return value, dz, 0.0 * dlogvar                               # BUG: log q's −Σ log σ left out of the gradient

    monkeypatch.setattr(iwae_module, "log_prior_ratio", no_log_det)
    model = IWAE(input_dim=12, hidden=(8,), latent_dim=3, dtype="float64", seed=2, k=3)
    errors = check_model(model, rng.random((5, 12)), model.draw_noise(rng, 5))
    assert max(v for name, v in errors.items() if name.startswith("encoder")) > FAILS


def m2_batch(rng):
    from tinyvae.m2 import M2, UNLABELLED

    labels = np.array([2, UNLABELLED, 0, UNLABELLED, 3, UNLABELLED])
    return M2, dict(input_dim=12, hidden=(8,), latent_dim=3, n_classes=4, alpha=2.5, activation="tanh",
                    dtype="float64", seed=2), rng.random((6, 12)), labels


def test_m2_treating_q_of_y_as_a_constant_in_u_is_caught(rng):
    M2, kwargs, x, labels = m2_batch(rng)

    class ConstantQ(M2):
        def forward(self, x, eps=None, check_finite=True, labels=None):
            out = super().forward(x, eps, check_finite, labels)
            self._dlogits = self._dlogits * (np.asarray(labels) >= 0)[:, None]   # BUG: no gradient through q(y|x) in U
            return out

    model = ConstantQ(**kwargs)
    errors = check_model(model, x, model.draw_noise(rng, 6), labels=labels)
    assert max(v for name, v in errors.items() if name.startswith("classifier")) > FAILS


def test_m2_without_the_entropy_gradient_is_caught(rng):
    from tinyvae.classifier import log_softmax

    M2, kwargs, x, labels = m2_batch(rng)

    class NoEntropyGradient(M2):
        def forward(self, x, eps=None, check_finite=True, labels=None):
            out = super().forward(x, eps, check_finite, labels)
            log_q = log_softmax(self.classifier.forward(x))
            q, unlabelled = np.exp(log_q), (np.asarray(labels) < 0)[:, None]
            entropy_part = q * (log_q - (q * log_q).sum(axis=1, keepdims=True)) / x.shape[0]
            self._dlogits = self._dlogits - entropy_part * unlabelled   # BUG: −H(q) left out of the gradient
            return out

    model = NoEntropyGradient(**kwargs)
    errors = check_model(model, x, model.draw_noise(rng, 6), labels=labels)
    assert max(v for name, v in errors.items() if name.startswith("classifier")) > FAILS


def autoencoder(rng, **kwargs):
    from tinyvae.autoencoder import Autoencoder

    model = Autoencoder(input_dim=12, hidden=(8,), latent_dim=3, activation="tanh", dtype="float64", seed=2, **kwargs)
    return model, rng.random((6, 12)), model.draw_noise(np.random.default_rng(5), 6)


def test_sparsity_gradient_bugs_are_caught(rng, monkeypatch):
    import tinyvae.autoencoder
    from tinyvae.losses import kl_sparsity, l1_penalty

    def half_kl(code, rho):
        value, _ = kl_sparsity(code, rho)
        return value, -rho / code.mean(axis=0) * np.ones_like(code)   # BUG: the (1 − ρ)/(1 − ρ̂) term is gone

    def flipped_l1(code):
        value, dcode = l1_penalty(code)
        return value, -dcode                                           # BUG: sign

    monkeypatch.setattr(tinyvae.autoencoder, "kl_sparsity", half_kl)
    monkeypatch.setattr(tinyvae.autoencoder, "l1_penalty", flipped_l1)
    for kwargs in (dict(sparsity="kl", sparsity_weight=2.0, sparsity_target=0.2), dict(sparsity="l1")):
        model, x, noise = autoencoder(rng, **kwargs)
        assert max(check_model(model, x, noise).values()) > FAILS, kwargs


def test_denoising_with_fresh_noise_every_call_is_caught(rng, monkeypatch):
    import tinyvae.autoencoder

    fresh = np.random.default_rng(0)

    def redrawn(x, noise, kind, level):
        return x + level * fresh.standard_normal(x.shape)              # BUG: ignores the fixed noise

    monkeypatch.setattr(tinyvae.autoencoder, "corrupt", redrawn)
    model, x, noise = autoencoder(rng, noise="gaussian", noise_level=0.3)
    assert max(check_model(model, x, noise).values()) > FAILS


# --- convolution (tinyvae/conv.py, tinyvae/im2col.py) ---------------------------------------------------

def conv_layer(cls, *args, **kwargs):
    from tinyvae.conv import Conv2d, ConvTranspose2d

    layer = {"conv": Conv2d, "transposed": ConvTranspose2d}.get(cls, cls)(*args, **kwargs)
    Parameters({"layer": layer}, dtype="float64", seed=0)
    return layer


def test_flipped_kernel_is_caught_by_the_reference_though_gradients_agree(rng):
    """A true convolution (kernel flipped, as in signal processing) is self-consistent: only a
    comparison with the definition (PyTorch's cross-correlation) can catch it, and does."""
    from test_conv import max_error_against_reference

    from tinyvae.conv import Conv2d

    class FlippedKernel(Conv2d):
        def flip(self):
            self.W[...] = self.W[:, :, ::-1, ::-1].copy()  # BUG: W[o, c, k−1−i, k−1−j] instead of W[o, c, i, j]

        def forward(self, x):
            self.flip()
            try:
                return super().forward(x)
            finally:
                self.flip()

        def backward(self, dy):
            self.flip()
            try:
                dx = super().backward(dy)
            finally:
                self.flip()
            self.dW[...] = self.dW[:, :, ::-1, ::-1].copy()
            return dx

    layer = conv_layer(FlippedKernel, 2, 3, 3, 2, 1)
    x = rng.standard_normal((2, 2, 7, 6))
    assert max(check_layer(layer, x).values()) < 1e-8      # the gradient check alone is fooled...
    assert max_error_against_reference(layer, x) > FAILS    # ...the definition is not
    assert max_error_against_reference(conv_layer("conv", 2, 3, 3, 2, 1), x) < 1e-12


@pytest.mark.parametrize("kind", ["conv", "transposed"])
def test_off_by_one_padding_is_caught(rng, kind):
    from test_conv import max_error_against_reference

    from tinyvae.im2col import Im2col

    class OffByOne(Im2col):
        def pad(self, x):
            p, (N, C, H, W) = self.p, x.shape
            x_pad = np.zeros((N, H + 2 * p, W + 2 * p, C))
            x_pad[:, p - 1:p - 1 + H, p - 1:p - 1 + W, :] = x.transpose(0, 2, 3, 1)   # BUG: one pixel up and left
            return x_pad

    layer = conv_layer(kind, 2, 3, 3, 2, 1)
    x = rng.standard_normal((2, 2, 7, 6) if kind == "conv" else (2, 2, 3, 4))
    layer.patches = OffByOne(3, 2, 1, fast=False)           # the reference's pad (the twin reads x directly)
    errors = check_layer(layer, x)
    assert errors[{"conv": "x", "transposed": "W"}[kind]] > FAILS   # im2col's image: conv's x, the transpose's dy
    if kind == "conv":
        assert max_error_against_reference(layer, x) > FAILS


@pytest.mark.parametrize("kind", ["conv", "transposed"])
def test_missing_bias_gradient_is_caught(rng, kind):
    from tinyvae.conv import Conv2d, ConvTranspose2d

    class NoBiasGradient({"conv": Conv2d, "transposed": ConvTranspose2d}[kind]):
        def backward(self, dy):
            dx = super().backward(dy)
            self.db[...] = 0.0                             # BUG: db never computed (a fresh buffer is zeros)
            return dx

    layer = conv_layer(NoBiasGradient, 2, 3, 3, 2, 1)
    errors = check_layer(layer, rng.standard_normal((2, 2, 5, 4)))
    assert errors["b"] > FAILS and errors["W"] < 1e-8


def test_col2im_overwriting_instead_of_summing_is_caught(rng):
    from tinyvae.im2col import Im2col, output_size

    class Overwrites(Im2col):
        def col2im(self, cols, shape):
            k, s, p, (N, C, H, W) = self.k, self.s, self.p, shape
            H_out, W_out = output_size(H, k, s, p), output_size(W, k, s, p)
            patches = cols.reshape(N, H_out, W_out, k, k, C)
            x_pad = np.zeros((N, H + 2 * p, W + 2 * p, C))
            for i in range(k):
                for j in range(k):                         # BUG: "=" where overlapping patches must add up
                    x_pad[:, i:i + s * H_out:s, j:j + s * W_out:s, :] = patches[:, :, :, i, j, :]
            return x_pad[:, p:p + H, p:p + W, :].transpose(0, 3, 1, 2)

    layer = conv_layer("conv", 2, 3, 3, 1, 1)              # k > s: patches overlap
    layer.patches = Overwrites(3, 1, 1)
    assert check_layer(layer, rng.standard_normal((2, 2, 5, 4)))["x"] > FAILS


def test_col2im_twin_with_its_offsets_swapped_is_caught(rng):
    from test_conv import twin_max_difference

    from tinyvae.conv_kernels import ConvKernels, col2im_add, im2col_copy

    def swapped(patches, x, s, p):
        col2im_add(patches.transpose(0, 1, 2, 4, 3, 5), x, s, p)   # BUG: offset (j, i) where (i, j) belongs

    assert twin_max_difference(ConvKernels(im2col_copy, swapped), rng, np.float64) > FAILS
    assert twin_max_difference(ConvKernels(im2col_copy, col2im_add), rng, np.float64) == 0.0


def test_im2col_twin_with_its_padding_off_by_one_is_caught(rng):
    from test_conv import twin_max_difference

    from tinyvae.conv_kernels import ConvKernels, col2im_add, im2col_copy

    def shifted(x, cols, k, s, p):
        im2col_copy(x, cols, k, s, max(p - 1, 0))                     # BUG: one pixel of padding too few

    assert twin_max_difference(ConvKernels(shifted, col2im_add), rng, np.float64) > FAILS


def test_compiled_relu_with_the_kink_on_the_wrong_side_is_caught(rng):
    from test_conv_twins import twin_mismatches

    from tinyvae.fast.relu_kernels import CompiledReLU, ReluKernels, relu_backward

    def forward(x, y, mask):
        for i in range(x.shape[0]):
            mask[i] = x[i] >= 0                               # BUG: slope 1 at x = 0, where ReLU's is 0
            y[i] = x[i] * mask[i]

    assert twin_mismatches(CompiledReLU(ReluKernels(forward, relu_backward)), rng, np.float64) > 0


def test_compiled_relu_that_ignores_the_gradients_memory_order_is_caught(rng):
    from test_conv_twins import twin_mismatches

    from tinyvae.fast.relu_kernels import CompiledReLU, ReluKernels, in_memory_order, relu_backward, relu_forward

    class OrderBlind(CompiledReLU):
        def backward(self, dy):
            dx = np.empty_like(self.mask, dtype=dy.dtype)
            self.kernels.backward(dy.reshape(-1), in_memory_order(self.mask), in_memory_order(dx))  # BUG
            return dx

    layer = OrderBlind(ReluKernels(relu_forward, relu_backward))
    assert twin_mismatches(layer, rng, np.float64) > 0
    assert twin_mismatches(CompiledReLU(ReluKernels(relu_forward, relu_backward)), rng, np.float64) == 0
