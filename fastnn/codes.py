"""The integer codes shared by the compiled kernels, their NumPy twin and the Python side.

A network's plan tells the engine each layer's kind (``DENSE`` or an activation code),
and the loss and optimizer kernels dispatch on a loss or optimizer code. Every side
reads the codes from here, so they cannot disagree.

This module imports nothing, by rule: the kernels read it without loading the rest of
fastnn, and ``import fastnn`` reads it without loading Numba. The kernels import the
codes as module-level integers, which Numba compiles in as constants.

A change to this file compiles every kernel again (``fastnn.kernels.cache`` stamps
each cached kernel with it). A code, once given, keeps its value all the same: a new
layer kind, loss or optimizer takes the next free number.
"""

# Layer kinds in a plan. The activations double as the codes their kernels dispatch on.
DENSE = 0
TANH = 1
SIGMOID = 2
RELU = 3
IDENTITY = 4
LEAKY_RELU = 5
# Layers on (C, H, W) samples, and dropout (the identity outside training).
CONV2D = 6
MAXPOOL2D = 7
AVGPOOL2D = 8
FLATTEN = 9
DROPOUT = 10
#: The first code of a layer only the convolutional engine runs.
FIRST_SPATIAL = CONV2D

#: Activation name -> code.
ACTIVATION_CODES: dict[str, int] = {
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "relu": RELU,
    "identity": IDENTITY,
    "leaky_relu": LEAKY_RELU,
}

# Losses.
MSE = 0
BINARY_CROSS_ENTROPY = 1
CROSS_ENTROPY = 2

#: Loss name -> code.
LOSS_CODES: dict[str, int] = {
    "mse": MSE,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
    "cross_entropy": CROSS_ENTROPY,
}

# Optimizers: plain SGD, SGD with (Nesterov) momentum, Adam (with AdamW's decay).
SGD = 0
MOMENTUM = 1
ADAM = 2

#: Optimizer code name -> code.
OPTIMIZER_CODES: dict[str, int] = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM}
