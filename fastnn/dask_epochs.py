"""What the client does between the epochs of a distributed fit: the validation
loss, the checkpoint, the callback, and resuming from a checkpoint."""

from __future__ import annotations

import numpy as np

from . import dask_checkpoint
from .dask_data import evaluate
from .network import Network


def check_validation(net: Network, validation_data):
    """``validation_data`` checked: NumPy pairs as ``net.fit`` checks them, dask
    collections as they are (they are read on the workers)."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, Y_val)")
    Xv, Yv = validation_data
    if isinstance(Xv, np.ndarray) and isinstance(Yv, np.ndarray):
        return net._check_XY(Xv, Yv, prefix="validation ")
    return Xv, Yv


def validation_loss(client, net: Network, validation) -> float:
    Xv, Yv = validation
    if isinstance(Xv, np.ndarray) and isinstance(Yv, np.ndarray):
        return net._mean_loss(Xv, Yv)
    return float(client.compute(evaluate(net, Xv, Yv)).result())


def resume(net: Network, checkpoint) -> tuple[int, dict]:
    """Load ``checkpoint`` into ``net`` if the file exists: (epochs done, history)."""
    if checkpoint is None:
        return 0, {}
    found = dask_checkpoint.load(checkpoint)
    if found is None:
        return 0, {}
    saved, done, history = found
    if repr(saved) != repr(net):
        raise ValueError(
            f"the checkpoint {checkpoint!r} holds {saved!r}, not {net!r}: pass another "
            "checkpoint path, or remove the file to start over"
        )
    net.params[:] = saved.params
    net.optimizer = saved.optimizer
    net._rng = saved._rng
    return done, history


def end_epoch(client, net, epoch, history, loss, validation, checkpoint, callback) -> None:
    """The client's work after an epoch: history, validation, checkpoint, callback."""
    history["loss"].append(loss)
    if validation is not None:
        history.setdefault("val_loss", []).append(validation_loss(client, net, validation))
    if checkpoint is not None:
        dask_checkpoint.save(net, checkpoint, epoch, history)
    if callback is not None:
        callback(epoch, history)
