"""The layers and their maths: everything a model is built from, each with its backward.

Reading order: params (all weights in one flat buffer), base (the Layer contract: forward caches,
backward overwrites the gradients), layers (Linear, Sequential, mlp), activations, im2col and conv
(Conv2d and its adjoint ConvTranspose2d), conv_nets (the convolutional stacks of the models),
losses (the likelihoods and the Gaussian KL, each with its gradient), reparam (z = mu + σ·eps),
gradcheck (central differences: the proof of every backward above).
"""
