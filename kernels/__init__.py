"""The Numba kernels of fastnn's hot paths.

Installed as ``fastnn.kernels``. Every kernel writes into a preallocated ``out`` array
and has a pure-NumPy twin of the same name and signature in ``fastnn.reference``.
Nothing here compiles at import: each kernel compiles on its first call, and the
result is cached on disk.
"""

from .activations import (
    activation_backward,
    activation_forward,
    identity_backward,
    identity_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .blocked import fit_sgd_blocked
from .conv import (
    avgpool2d_backward,
    avgpool2d_forward,
    conv2d_backward_sgd,
    conv2d_forward,
    conv2d_forward_batch,
    conv2d_input_grad,
    conv2d_input_grad_batch,
    conv2d_weight_grad_acc,
    conv2d_weight_grad_batch,
    maxpool2d_backward,
    maxpool2d_forward,
)
from .conv_engine import fit_minibatch_conv, fit_sgd_conv, forward_conv
from .dense import (
    dense_backward_sgd,
    dense_forward,
    dense_forward_batch,
    dense_input_grad,
    dense_weight_grad,
    sgd_update,
)
from .engine import fit_sgd, forward_batch
from .fullbatch import fullbatch_loss_grad
from .losses import (
    batch_loss,
    batch_loss_grad,
    binary_cross_entropy_grad,
    binary_cross_entropy_loss,
    cross_entropy_grad,
    cross_entropy_loss,
    loss_grad,
    loss_value,
    mse_grad,
    mse_loss,
    output_transform,
    softmax,
)
from .minibatch import fit_minibatch
from .optimizers import adam_step, momentum_step, optimizer_step

__all__ = [
    "activation_backward",
    "activation_forward",
    "adam_step",
    "avgpool2d_backward",
    "avgpool2d_forward",
    "batch_loss",
    "batch_loss_grad",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_loss",
    "conv2d_backward_sgd",
    "conv2d_forward",
    "conv2d_forward_batch",
    "conv2d_input_grad",
    "conv2d_input_grad_batch",
    "conv2d_weight_grad_acc",
    "conv2d_weight_grad_batch",
    "cross_entropy_grad",
    "cross_entropy_loss",
    "dense_backward_sgd",
    "dense_forward",
    "dense_forward_batch",
    "dense_input_grad",
    "dense_weight_grad",
    "fit_minibatch",
    "fit_minibatch_conv",
    "fit_sgd",
    "fit_sgd_blocked",
    "fit_sgd_conv",
    "forward_batch",
    "forward_conv",
    "fullbatch_loss_grad",
    "identity_backward",
    "identity_forward",
    "loss_grad",
    "loss_value",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "momentum_step",
    "mse_grad",
    "mse_loss",
    "optimizer_step",
    "output_transform",
    "relu_backward",
    "relu_forward",
    "sgd_update",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax",
    "tanh_backward",
    "tanh_forward",
]
