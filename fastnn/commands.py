"""The ``fastnn train``, ``predict`` and ``evaluate`` commands (``fastnn.cli`` parses
their arguments).

``train`` learns a ``fastnn.preprocessing.Preprocessing`` from the data and stores it
in the model file with the network; ``predict`` and ``evaluate`` apply it. These two
run the network on the pure-NumPy twin, which gives the Numba kernels' results within
float tolerance without importing Numba: a warm ``fastnn predict`` on a small file
starts in a fraction of a second, and its output never depends on the file's size.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from .cli_common import CLIError, output_path, require, say, write_text
from .preprocessing import Preprocessing
from .tabular import Frame, frame_from_arrays, read_csv

#: The default validation split is made only when it holds at least this many rows.
MIN_VALIDATION_ROWS = 20
DEFAULT_VALIDATION_FRACTION = 0.1
#: Without a validation split, the least fall of the training loss that counts as an
#: improvement for early stopping: scikit-learn's MLP ``tol``.
TRAINING_LOSS_TOL = 1e-4
#: How many copies of the parameters training keeps (weights, snapshot, gradient,
#: two optimizer moments, best weights): the basis of the memory check.
PARAM_COPIES = 6


# -- data -------------------------------------------------------------------------------
def read_frame(path: str, index_col: bool, need_target: bool) -> Frame:
    """DATA as a Frame: a CSV file, or a .npz file with arrays X (and y)."""
    if os.fspath(path).lower().endswith(".npz"):
        from .datasets import read_table

        table = read_table(path, need_target=need_target)
        return frame_from_arrays(path, table.X, table.y)
    frame = read_csv(path)
    if index_col:
        if frame.names[0]:
            # A named first column is more likely data than an index: dropping it
            # silently would train on one feature less.
            raise CLIError(
                f"{path}: --index-col drops a first column without a name (an index, as "
                f"pandas writes one), but the first column is named {frame.names[0]!r}; "
                "leave out --index-col, or empty that name in the header if it is an index"
            )
        frame.drop("")
    if "" in frame.names:
        position = frame.names.index("") + 1 + bool(index_col)
        hint = (
            "an index column, as pandas writes one? drop it with --index-col, or name it"
            if position == 1
            else "name it"
        )
        raise CLIError(f"{path}: column {position} has no name in the header; {hint}")
    return frame


def _plain_preprocessing(net, frame: Frame, target: str | None) -> Preprocessing:
    """For a network saved without preprocessing: every column but ``target`` is a
    feature, used as it is; classes are 0, 1, 2, ..."""
    features = [name for name in frame.names if name and name != target]
    if len(features) != net.n_features:
        hint = ""
        if len(features) == net.n_features + 1 and target is None:
            hint = "; if one column is the target, leave it out with --target NAME"
        raise CLIError(
            f"{frame.path} has {len(features)} feature columns but the model takes "
            f"{net.n_features}{hint}"
        )
    width = net.n_features
    regression = net.loss == "mse"
    outputs = range(net.n_outputs)
    return Preprocessing(
        features,
        {},
        {},
        [str(k) for k in outputs] if regression else [target or "target"],
        "regression" if regression else "classification",
        [] if regression else list(range(max(2, net.n_outputs))),
        np.ones(width),
        np.zeros(width),
        np.ones(width),
    )


def load_model(path: str):
    """The network (on the NumPy twin) and its Preprocessing (None if it has none).

    Whatever is wrong with the file, the error is one line: a model file may be
    corrupt or hostile, and no traceback is ever the answer to one.
    """
    from .io import load_extra

    if not os.path.isfile(path):
        raise CLIError(f"{path}: no such model file (write one with 'fastnn train')")
    try:
        net, extra, arrays = load_extra(path, backend="numpy")
        prep = None
        if extra is not None:
            prep = extra.get("preprocessing") if isinstance(extra, dict) else extra
            prep = Preprocessing.from_extra(prep, arrays, net.n_features, net.n_outputs)
    except ValueError as exc:
        message = " ".join(str(exc).split())
        if "fastnn model file" not in message:
            message = f"{path} is not a valid fastnn model file: {message}"
        raise CLIError(message) from None
    except Exception as exc:  # e.g. RecursionError, MemoryError from a crafted file
        raise CLIError(f"{path} is not a valid fastnn model file ({type(exc).__name__})") from None
    return net, prep


# -- train -------------------------------------------------------------------------------
def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation, if known: Linux's MemAvailable,
    or less when the process's control group has a lower limit."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            found.append(int(limit) - int(f.read()))
    except (OSError, ValueError):  # no cgroup v2 limit ("max"), or not Linux
        pass
    return min(found) if found else None


def check_network_size(sizes: Sequence[int], dtype: np.dtype, batch: int, option: str) -> None:
    """Refuse a network whose training would not fit in memory, before allocating it."""
    n_params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    need = (PARAM_COPIES * n_params + 4 * batch * sum(sizes)) * dtype.itemsize
    available = _available_memory()
    if available is not None and need > available:
        raise CLIError(
            f"{option}: a network of {n_params:,} parameters needs about {need / 2**30:.1f} GiB "
            f"to train, more than the {available / 2**30:.1f} GiB of memory available; use "
            "smaller layers"
        )


def build_network(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    activation: str,
    loss: str,
    *,
    dtype,
    seed: int,
    backend: str = "numba",
    threads: int | None = None,
    sklearn_weights: bool = False,
):
    """A feed-forward network: ``hidden`` layers of ``activation``, a linear output
    (the cross-entropies take logits, and MSE regresses).

    Parameters
    ----------
    n_in, hidden, n_out
        The input width, the hidden widths and the output width.
    activation, loss : str
    dtype : numpy dtype
    seed : int
        Seeds the initial weights and the shuffling.
    backend : str
    threads : int, optional
    sklearn_weights : bool
        Start from the weights scikit-learn's MLPs draw for ``random_state=seed``
        (``fastnn.builders.initial_weights``) instead of the Network's own.

    Returns
    -------
    Network
    """
    from .builders import initial_weights, mlp
    from .network import Network

    widths = [n_in, *hidden, n_out]
    net = Network(
        mlp(widths, activation), loss=loss, dtype=dtype, backend=backend, seed=seed, threads=threads
    )
    if sklearn_weights:
        # After the Network has checked the seed; RandomState takes 32 bits.
        rs = np.random.RandomState(
            seed if seed < 2**32 else np.random.SeedSequence(seed).generate_state(4)
        )
        for layer, (coef, intercept) in zip(
            net.dense_layers, initial_weights(rs, widths, activation), strict=True
        ):
            layer.weights[...] = coef.T
            layer.bias[...] = intercept
    return net


def _network_for(args, n_in: int, n_out: int):
    # scikit-learn's initial weights: from He's (the Network's default before a ReLU)
    # the command scored 2 points below FastMLPClassifier on iris at its defaults.
    return build_network(
        n_in,
        args.layers,
        n_out,
        args.activation,
        args.loss,
        dtype=np.dtype(args.dtype),
        seed=args.seed,
        threads=args.threads,
        sklearn_weights=True,
    )


def _kernels_cached(net) -> bool:
    """Whether Numba's on-disk cache holds the training kernels for this network's
    dtype, compiled for this machine from the current source (a warm start). A cache
    of float64 kernels does not make a float32 run warm: it compiles its own."""
    if net.backend != "numba":
        return True
    import inspect

    import numba

    from .kernels import engine, losses, minibatch

    dtype = numba.from_dtype(net.dtype)

    def cached(kernel, argument: str) -> bool:
        position = list(inspect.signature(kernel.py_func).parameters).index(argument)
        cache = kernel._cache
        # An index key is (signature, machine, source hashes); a stale or missing
        # index loads as {}.
        current = cache._index_key((), kernel.targetctx.codegen())[1:]
        index = cache._cache_file._load_index()
        return any(k[1:] == current and k[0][position].dtype == dtype for k in index)

    try:
        # The compiled loops themselves (fit_sgd and fit_minibatch are Python
        # wrappers); a run trains on one of the two loops.
        loops = cached(minibatch._minibatch_epochs, "params") or cached(
            engine._sgd_epochs, "params"
        )
        return loops and cached(engine.forward_batch, "params") and cached(losses.batch_loss, "Z")
    except (AttributeError, IndexError, TypeError, ValueError):
        return True  # a Numba without this cache layout: say nothing


def _compile_first(args, net, X, Y, fit_kwargs: dict) -> None:
    """On a cold cache, compile the kernels on two rows first, saying so and how long
    it took, so that a long silent first run is never a surprise."""
    if _kernels_cached(net):
        return
    say(args, "compiling kernels, first run only…")
    start = time.perf_counter()
    twin = _network_for(args, net.n_features, net.n_outputs)
    kwargs = {**fit_kwargs, "epochs": 1, "callback": None}
    if kwargs.get("validation_data") is not None:
        kwargs["validation_data"] = (X[:2], Y[:2])
    twin.fit(X[:2], Y[:2], **kwargs)
    twin.predict(X[:2])
    say(args, f"compiled in {time.perf_counter() - start:.1f} s")


def _progress(args, epochs: int) -> tuple[Callable | None, Callable[[], None]]:
    """A fit callback that drives a tqdm bar, and a function that closes it."""
    if args.quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return None, lambda: None
    tqdm = require("tqdm", "the progress bar").tqdm
    bar = tqdm(total=epochs, unit="epoch", desc="training", file=sys.stderr, dynamic_ncols=True)

    def callback(epoch: int, history: dict) -> None:
        bar.update(epoch - bar.n)
        bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()}, refresh=False)

    return callback, bar.close


def _split(args, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and validation samples."""
    fraction = args.validation_fraction
    if fraction is None:
        fraction = DEFAULT_VALIDATION_FRACTION
        if round(fraction * n) < MIN_VALIDATION_ROWS:
            say(
                args,
                f"{n} rows: too few for a validation split, training on all of them "
                "(--validation-fraction F makes one anyway)",
            )
            fraction = 0.0
    n_val = round(fraction * n)
    if fraction > 0 and not 1 <= n_val < n:
        raise CLIError(
            f"--validation-fraction {fraction} of {n} samples leaves no validation or no "
            "training samples; use 0 for none, or a larger data set"
        )
    order = np.random.default_rng(args.seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _choose_loss(args) -> tuple[str | None, str | None]:
    """The task the user asked for, from --task or --loss (None: infer it), and the
    option that asked for it, for messages."""
    if args.loss is not None:
        task = "regression" if args.loss == "mse" else "classification"
        if args.task is not None and args.task != task:
            raise CLIError(f"--loss {args.loss} does not train a {args.task}; drop one of them")
        return task, f"--loss {args.loss}"
    return args.task, None


def _score(net, X: np.ndarray, Y: np.ndarray, prep: Preprocessing) -> str:
    """Accuracy for a classifier, R² for a regression (averaged over the targets)."""
    P = net.predict(X)
    if prep.task == "classification":
        hits = (
            (P[:, 0] > 0.5) == (Y[:, 0] > 0.5)
            if Y.shape[1] == 1
            else (P.argmax(axis=1) == Y.argmax(axis=1))
        )
        return f"accuracy {float(np.mean(hits)):.4f}"
    spread = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1 - ((P - Y) ** 2).sum(axis=0) / np.where(spread > 0, spread, np.nan)
    return f"r2 {float(np.mean(r2)):.4f}"


def _kept_epoch(watched: Sequence[float], min_delta: float) -> int:
    """The epoch (from 1) whose weights early stopping keeps: the last one that
    improved on the best loss before it by more than ``min_delta``, as ``Network.fit``
    decides."""
    best, kept = np.inf, 0
    for epoch, loss in enumerate(watched, 1):
        if loss < best - min_delta:
            best, kept = loss, epoch
    return kept


def cmd_train(args) -> int:
    out = output_path(args.output, "-o")
    plot = output_path(args.plot, "--plot")
    if args.plot:
        require("matplotlib", "--plot")
    require("sklearn", "fastnn train")  # type_of_target tells the task
    frame = read_frame(args.data, args.index_col, need_target=True)
    targets = args.target or [frame.names[-1]]
    task, task_option = _choose_loss(args)
    prep, X, Y, notes = Preprocessing.fit(
        frame, targets, scale=args.scale, impute=args.impute, task=task, task_option=task_option
    )
    del frame  # its columns are in X now
    say(args, *notes)
    if args.loss is None:
        args.loss = "cross_entropy" if prep.task == "classification" else "mse"
    if args.loss == "binary_cross_entropy":
        if len(prep.labels) != 2:
            raise CLIError(f"--loss binary_cross_entropy needs 2 classes, not {len(prep.labels)}")
        Y = Y[:, 1:]
    n_out = Y.shape[1]
    check_network_size(
        [X.shape[1], *args.layers, n_out],
        np.dtype(args.dtype),
        args.batch_size,
        f"--layers {','.join(map(str, args.layers))}",
    )
    tr, val = _split(args, X.shape[0])
    validation = (X[val], Y[val]) if val.size else None
    if val.size:
        X, Y = X[tr], Y[tr]
    # On by default: on the validation loss, or on the training loss without a split
    # (scikit-learn's MLPs stop so too).
    early = args.early_stopping if args.early_stopping is not None else True
    net = _network_for(args, X.shape[1], n_out)
    learning_rate = args.learning_rate
    if learning_rate is None:
        learning_rate = 0.001 if args.optimizer in ("adam", "adamw") else 0.01
    fit_kwargs = dict(
        learning_rate=learning_rate,
        batch_size=args.batch_size,
        shuffle=True,
        validation_data=validation,
        optimizer=args.optimizer,
        early_stopping=early,
        patience=args.patience,
        # The training loss falls a little nearly every epoch: as scikit-learn's MLPs,
        # count only a fall of TRAINING_LOSS_TOL.
        min_delta=0.0 if validation else TRAINING_LOSS_TOL,
    )
    _compile_first(args, net, X, Y, fit_kwargs)
    callback, close = _progress(args, args.epochs)
    try:
        history = net.fit(X, Y, epochs=args.epochs, callback=callback, **fit_kwargs)
    finally:
        close()
    if early and len(history["loss"]) < args.epochs:
        watched = history["val_loss" if validation else "loss"]
        best = _kept_epoch(watched, fit_kwargs["min_delta"])
        say(args, f"stopped early after epoch {len(watched)}; kept the weights of epoch {best}")
    for name, Xs, Ys in [("train", X, Y)] + ([("validation", *validation)] if validation else []):
        say(
            args,
            f"{name:<10}  loss {net.evaluate(Xs, Ys):.4g}  {_score(net, Xs, Ys, prep)}  "
            f"({Xs.shape[0]} samples)",
        )
    from .io import save

    meta, arrays = prep.to_extra()
    save(net, out, extra=({"preprocessing": meta}, arrays))
    written = [args.output]
    if args.plot:
        from .plotting import plot_loss_curves

        plot_loss_curves({f"{os.path.basename(args.data)}, {args.optimizer}": history}, plot)
        written.append(args.plot)
    say(args, f"Wrote {' and '.join(written)}.")
    return 0


# -- predict and evaluate --------------------------------------------------------------------
def _model_and_inputs(args, need_target: bool):
    net, prep = load_model(args.model)
    frame = read_frame(args.data, args.index_col, need_target=need_target)
    if prep is None:
        target = args.target[0] if args.target else None
        if need_target and target is None:
            raise CLIError("this model has no record of its target: name it with --target")
        prep = _plain_preprocessing(net, frame, target)
    if args.target and need_target:
        prep.targets = list(args.target)
    return net, prep, frame, prep.transform(frame)


def _number_format(precision: int | None, default: int) -> str:
    return f"%.{precision or default}g"


def cmd_predict(args) -> int:
    to_stdout = args.output == "-"
    out = None if to_stdout else output_path(args.output, "-o")
    net, prep, _, X = _model_and_inputs(args, need_target=False)
    P = net.predict(X)
    if prep.task == "classification":
        P = prep.probabilities(P)
        fmt = _number_format(args.precision, 6)
        header = ["prediction"] + [f"probability_{label}" for label in prep.labels]
        columns = [[str(v) for v in prep.labels_of(P.argmax(axis=1))]]
        columns += [[fmt % v for v in p] for p in P.T]
    else:
        values = P
        digits = 9 if net.dtype == np.float32 else 17  # enough to round-trip the value
        fmt = _number_format(args.precision, digits)
        header = (
            ["prediction"] if len(prep.targets) == 1 else [f"prediction_{t}" for t in prep.targets]
        )
        columns = [[fmt % v for v in col] for col in values.T]
    from .tabular import write_csv

    text = write_csv(header, columns)
    if to_stdout:
        sys.stdout.write(text)  # the CSV alone: no "Wrote" line among its rows
        sys.stdout.flush()
        return 0
    write_text(out, text)
    say(args, f"Wrote {P.shape[0]} predictions to {args.output}.")
    return 0


def cmd_evaluate(args) -> int:
    plot = output_path(args.plot, "--plot")
    if args.plot:
        require("matplotlib", "--plot")
    require("sklearn", "fastnn evaluate")
    from . import evaluation

    net, prep, frame, X = _model_and_inputs(args, need_target=True)
    P = net.predict(X)
    if prep.task == "classification":
        true = prep.class_index(frame)
        predicted = prep.probabilities(P).argmax(axis=1)
        scores = evaluation.classification_scores(true, predicted, len(prep.labels))
        say(args, evaluation.format_scores(scores, prep.labels))
        if plot:
            evaluation.plot_confusion_matrix(scores["confusion_matrix"], prep.labels, plot)
    else:
        columns = [frame.column(name) for name in prep.targets]
        if any(c.dtype == object for c in columns):
            raise CLIError(f"{args.data}: the target column holds text; a regression needs numbers")
        true = np.column_stack(columns)
        if not np.all(np.isfinite(true)):
            raise CLIError(f"{args.data}: the target has missing or non-finite values")
        predicted = P
        scores = evaluation.regression_scores(true, predicted)
        say(args, evaluation.format_scores(scores, []))
        if plot:
            evaluation.plot_predicted_vs_true(true, predicted, plot)
    if plot:
        say(args, f"Wrote {args.plot}.")
    return 0
