"""The ``fastnn`` command: demo, train, predict and bench.

Run ``fastnn --help`` or ``python -m fastnn --help``. A user's mistake (a missing
file, a malformed CSV, an unknown column, a model that does not fit the data) ends
the command with a one-line ``fastnn: error: ...`` on stderr and exit status 2,
before anything is written; every file the command writes is written atomically,
so a file already at that path is never left half-written.

tqdm and matplotlib come with the ``cli`` extra and are imported only by the
commands that need them.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import zipfile
from collections.abc import Callable, Sequence

import numpy as np

from . import __version__

PROG = "fastnn"
INSTALL_HINT = 'pip install "fastnn-numba[cli]"'
BENCH_INSTALL_HINT = 'pip install "fastnn-numba[cli,bench]"'
ACTIVATIONS = ("relu", "tanh", "sigmoid")
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse")
EXIT_USAGE = 2
#: The most classes train accepts: labels beyond it are more likely a regression target.
MAX_CLASSES = 10_000


class CLIError(Exception):
    """A user's mistake: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other fastnn error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# -- argument types -------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number, e.g. 0.01")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1), e.g. 0.1 (0: none)")
    return value


def _layer_sizes(text: str) -> list[int]:
    if not text.strip():
        return []  # no hidden layers: a linear model
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma-separated list of layer widths, e.g. 64,32"
            ) from None
        if size < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: every layer width must be at least 1")
        sizes.append(size)
    return sizes


# -- helpers ----------------------------------------------------------------------------
def _require(module: str, what: str, hint: str = INSTALL_HINT):
    """Import an optional dependency, or fail with the install command."""
    try:
        return __import__(module)
    except ImportError:
        raise CLIError(f"{what} needs {module}, which is not installed: {hint}") from None


def _check_output(path: str | None, option: str) -> None:
    """Fail before any work if ``path`` cannot be written (its folder is missing)."""
    if path is None:
        return
    if os.path.isdir(path):
        raise CLIError(f"{option} {path}: is a directory; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{option} {path}: the folder {directory} does not exist; create it first")


def _write_text(path: str, text: str) -> None:
    from .io import atomic_write

    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _say(args, *lines: str) -> None:
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line)


def _accuracy(P: np.ndarray, Y: np.ndarray, loss: str) -> float:
    """The share of samples whose predicted class is the true one."""
    if loss == "binary_cross_entropy":
        return float(np.mean((P > 0.5) == (Y > 0.5)))
    return float(np.mean(P.argmax(axis=1) == Y.argmax(axis=1)))


def _build_network(
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
):
    from . import Dense, Network, ReLU, Sigmoid, Tanh

    act = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}[activation]
    layers = []
    width = n_in
    for size in hidden:
        layers += [Dense(width, size), act()]
        width = size
    # The output layer is linear: the cross-entropies take logits, and MSE regresses.
    layers.append(Dense(width, n_out))
    return Network(layers, loss=loss, dtype=dtype, backend=backend, seed=seed, threads=threads)


# -- demo -----------------------------------------------------------------------------
def _timed_fit(net, X, Y, **kwargs) -> tuple[dict, float]:
    start = time.perf_counter()
    history = net.fit(X, Y, **kwargs)
    return history, time.perf_counter() - start


def cmd_demo(args) -> int:
    from . import Dense, Network, Tanh
    from .datasets import load_digits, xor
    from .plotting import plot_decision_surface, plot_loss_curves

    _require("matplotlib", "fastnn demo")
    os.makedirs(args.out_dir, exist_ok=True)
    surface_png = os.path.join(args.out_dir, "xor_decision_surface.png")
    curves_png = os.path.join(args.out_dir, "loss_curves.png")
    xor_epochs, digit_epochs = (200, 3) if args.quick else (1000, 20)

    def xor_net(backend):
        layers = [Dense(2, 3), Tanh(), Dense(3, 1), Tanh()]
        return Network(layers, loss="mse", backend=backend, seed=args.seed)

    # Compile (or load from Numba's on-disk cache) every kernel before timing.
    start = time.perf_counter()
    X, Y = xor()
    xor_net("numba").fit(X, Y, epochs=1, learning_rate=0.1)
    Xd, yd = load_digits()
    order = np.random.default_rng(args.seed).permutation(len(yd))
    n_test = len(yd) // 5
    test, train = order[:n_test], order[n_test:]
    Xtr, ytr, Xte, yte = Xd[train], yd[train], Xd[test], yd[test]

    def digits_net(backend):
        return _build_network(
            64, [32], 10, "relu", "cross_entropy", dtype=np.float64, seed=args.seed, backend=backend
        )

    digit_fit = dict(learning_rate=0.01, batch_size=1, shuffle=True, validation_data=(Xte, yte))
    digits_net("numba").fit(
        Xtr[:8], ytr[:8], epochs=1, learning_rate=0.01, validation_data=(Xte[:8], yte[:8])
    )
    warmup = time.perf_counter() - start

    print(f"fastnn {__version__} demo: per-sample SGD, as in the classic layer design.")
    print(f"(Numba compiled or loaded its kernels in {warmup:.1f} s; not in the timings below.)")
    print()

    # XOR: the design's 2-3-1 tanh network, MSE, learning rate 0.1.
    xor_kwargs = dict(epochs=xor_epochs, learning_rate=0.1, batch_size=1, shuffle=True)
    net_x = xor_net("numba")
    hist_x, t_xor = _timed_fit(net_x, X, Y, **xor_kwargs)
    twin_x = xor_net("numpy")
    _, t_xor_np = _timed_fit(twin_x, X, Y, **xor_kwargs)
    out = net_x.predict(X).ravel()
    xor_acc = float(np.mean((out > 0.5) == (Y.ravel() > 0.5)))
    print(f"XOR, 2-3-1 tanh network, {xor_epochs} epochs:")
    print(f"  outputs for (0,0) (0,1) (1,0) (1,1): {np.array2string(out, precision=3)}")
    print(f"  accuracy {xor_acc:.0%}, final loss {hist_x['loss'][-1]:.3g}")
    print()

    # Digits: 64-32-10 ReLU network, softmax cross-entropy, 80/20 split.
    net_d = digits_net("numba")
    hist_d, t_dig = _timed_fit(net_d, Xtr, ytr, epochs=digit_epochs, **digit_fit)
    twin_d = digits_net("numpy")
    _, t_dig_np = _timed_fit(twin_d, Xtr, ytr, epochs=digit_epochs, **digit_fit)
    test_acc = float(np.mean(net_d.predict(Xte).argmax(axis=1) == yte))
    same = max(
        float(np.max(np.abs(net_x.params - twin_x.params))),
        float(np.max(np.abs(net_d.params - twin_d.params))),
    )
    print(
        f"Handwritten digits (bundled; {len(ytr)} training, {len(yte)} test images), "
        f"64-32-10 ReLU network, {digit_epochs} epochs:"
    )
    print(f"  test accuracy {test_acc:.1%}, test loss {hist_d['val_loss'][-1]:.3f}")
    print()

    print("Training time, the same work on both backends (same networks, seeds and epochs):")
    rows = [("XOR", t_xor, t_xor_np), ("digits", t_dig, t_dig_np)]
    print(f"  {'':8}{'fastnn (numba)':>16}{'NumPy twin':>14}{'speed-up':>10}")
    for name, fast, slow in rows:
        print(f"  {name:8}{fast:>15.3f}s{slow:>13.3f}s{slow / fast:>9.1f}x")
    print(f"  Both backends end with the same weights (largest difference {same:.1e}).")
    print()

    plot_decision_surface(net_x, X, Y, surface_png, title="XOR: network output")
    plot_loss_curves(
        {
            "XOR (training loss)": hist_x,
            "Digits": {"train loss": hist_d["loss"], "test loss": hist_d["val_loss"]},
        },
        curves_png,
    )
    print(f"Wrote {surface_png} and {curves_png}.")
    return 0


# -- train ----------------------------------------------------------------------------
def _targets(table, loss: str, path: str) -> tuple[np.ndarray, int]:
    """The target matrix the network trains on, and its number of outputs."""
    y = np.asarray(table.y)
    if y.dtype.kind not in "biuf":
        raise CLIError(f"{path}: the target has dtype {y.dtype}; it must be numeric")
    if not np.all(np.isfinite(y)):
        raise CLIError(f"{path}: the target {table.target_name!r} has NaN or inf values")
    if y.ndim == 2 and y.shape[1] > 1:
        return y.astype(np.float64), y.shape[1]  # one-hot rows or several regression targets
    y = y.reshape(-1)
    if loss == "mse":
        return y.reshape(-1, 1).astype(np.float64), 1
    if np.any(y != np.round(y)) or y.min() < 0:
        raise CLIError(
            f"{path}: the target {table.target_name!r} holds values other than class labels "
            f"0, 1, 2, ... (e.g. {y[(y != np.round(y)) | (y < 0)][0]!r}); --loss {loss} needs "
            "class labels; use --loss mse for regression"
        )
    labels = y.astype(np.int64)
    if loss == "binary_cross_entropy":
        if labels.max() > 1:
            raise CLIError(
                f"{path}: --loss binary_cross_entropy needs labels 0 and 1, but the target "
                f"{table.target_name!r} has {labels.max()}; use --loss cross_entropy"
            )
        return labels.reshape(-1, 1).astype(np.float64), 1
    n_classes = int(labels.max()) + 1
    if n_classes > MAX_CLASSES:
        raise CLIError(
            f"{path}: the target {table.target_name!r} has labels up to {n_classes - 1}, more "
            f"than {MAX_CLASSES} classes; is it a regression target? Then use --loss mse"
        )
    if n_classes < 2:
        raise CLIError(f"{path}: the target {table.target_name!r} has a single class, 0")
    return np.eye(n_classes)[labels], n_classes


def _progress(args, epochs: int) -> tuple[Callable | None, Callable[[], None]]:
    """A fit callback that drives a tqdm bar, and a function that closes it."""
    if args.quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return None, lambda: None
    tqdm = _require("tqdm", "the progress bar").tqdm
    bar = tqdm(total=epochs, unit="epoch", desc="training", file=sys.stderr, dynamic_ncols=True)

    def callback(epoch: int, history: dict) -> None:
        bar.update(epoch - bar.n)
        bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()}, refresh=False)

    return callback, bar.close


def cmd_train(args) -> int:
    from .datasets import read_table

    _check_output(args.output, "-o")
    _check_output(args.plot, "--plot")
    if args.plot:
        _require("matplotlib", "--plot")
    table = read_table(args.data, target=args.target, need_target=True)
    Y, n_out = _targets(table, args.loss, args.data)
    X = table.X
    n = X.shape[0]
    n_val = round(args.validation_fraction * n)
    if args.validation_fraction > 0 and not 1 <= n_val < n:
        raise CLIError(
            f"--validation-fraction {args.validation_fraction} of {n} samples leaves no "
            "validation or no training samples; use 0 for none, or a larger data set"
        )
    order = np.random.default_rng(args.seed).permutation(n)
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    validation = (X[val], Y[val]) if n_val else None

    net = _build_network(
        X.shape[1],
        args.layers,
        n_out,
        args.activation,
        args.loss,
        dtype=np.dtype(args.dtype),
        seed=args.seed,
        threads=args.threads,
    )
    learning_rate = args.learning_rate
    if learning_rate is None:
        learning_rate = 0.001 if args.optimizer in ("adam", "adamw") else 0.01
    callback, close = _progress(args, args.epochs)
    try:
        history = net.fit(
            X[tr],
            Y[tr],
            epochs=args.epochs,
            learning_rate=learning_rate,
            batch_size=args.batch_size,
            shuffle=True,
            validation_data=validation,
            callback=callback,
            optimizer=args.optimizer,
        )
    finally:
        close()

    classify = args.loss != "mse"
    splits = [("train", X[tr], Y[tr])] + ([("validation", *validation)] if validation else [])
    for name, Xs, Ys in splits:
        line = f"{name:<10}  loss {net.evaluate(Xs, Ys):.4g}"
        if classify:
            line += f"  accuracy {_accuracy(net.predict(Xs), Ys, args.loss):.4f}"
        print(f"{line}  ({Xs.shape[0]} samples)")
    net.save(args.output)
    written = [args.output]
    if args.plot:
        from .plotting import plot_loss_curves

        plot_loss_curves({f"{os.path.basename(args.data)}, {args.optimizer}": history}, args.plot)
        written.append(args.plot)
    _say(args, f"Wrote {' and '.join(written)}.")
    return 0


# -- predict ---------------------------------------------------------------------------
def _load_model(path: str):
    from . import load

    if not os.path.isfile(path):
        raise CLIError(f"{path}: no such model file (write one with 'fastnn train')")
    if not zipfile.is_zipfile(path):
        raise CLIError(f"{path}: not a fastnn model file (those are .npz archives)")
    return load(path)


def cmd_predict(args) -> int:
    from .datasets import read_table

    _check_output(args.output, "-o")
    net = _load_model(args.model)
    table = read_table(args.data, target=args.target, need_target=False)
    X = table.X
    if X.shape[1] != net.n_features:
        hint = ""
        if X.shape[1] == net.n_features + 1 and table.target_name is None:
            hint = "; if one column is the target, leave it out with --target NAME"
        raise CLIError(
            f"{args.data} has {X.shape[1]} feature columns but the model {args.model} takes "
            f"{net.n_features}{hint}"
        )
    P = net.predict(X)
    digits = 9 if net.dtype == np.float32 else 17  # enough to round-trip the value
    if net.loss == "cross_entropy":
        header = ["prediction"] + [f"probability_{k}" for k in range(P.shape[1])]
        columns = [P.argmax(axis=1), *P.T]
        formats = ["%d"] + [f"%.{digits}g"] * P.shape[1]
    elif net.loss == "binary_cross_entropy":
        header = ["prediction", "probability"]
        columns = [(P[:, 0] > 0.5).astype(np.int64), P[:, 0]]
        formats = ["%d", f"%.{digits}g"]
    else:
        header = (
            ["prediction"] if P.shape[1] == 1 else [f"prediction_{k}" for k in range(P.shape[1])]
        )
        columns = list(P.T)
        formats = [f"%.{digits}g"] * P.shape[1]
    buf = io.StringIO()
    table_out = np.column_stack(columns).astype(np.float64)
    np.savetxt(buf, table_out, fmt=formats, delimiter=",", header=",".join(header), comments="")
    _write_text(args.output, buf.getvalue())
    _say(args, f"Wrote {P.shape[0]} predictions to {args.output}.")
    return 0


# -- bench ------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    if args.plot:
        _require("matplotlib", "--plot")
    _require("threadpoolctl", "fastnn bench", BENCH_INSTALL_HINT)
    from . import benchmarks
    from .threads import available_cores

    # Before Numba, torch or JAX load: they read their thread settings once.
    benchmarks.pin_environment(args.threads or available_cores())
    rows = benchmarks.run(quick=args.quick, threads=args.threads)
    print(benchmarks.format_table(rows))
    if args.json:
        benchmarks.write_json(rows, args.json)  # atomic
    if args.plot:
        from .plotting import plot_benchmark_ratios

        plot_benchmark_ratios(rows, args.plot)
    mismatched = [f"{r['workload']}/{r['system']}" for r in rows if r.get("status") == "mismatch"]
    if mismatched:
        print(
            f"{PROG}: {len(mismatched)} result(s) disagreed with their reference and were not "
            f"timed: {', '.join(mismatched)}",
            file=sys.stderr,
        )
        return 1
    return 0


# -- parser ----------------------------------------------------------------------------
def _subparser(sub, name: str, help: str, description: str, example: str) -> _Parser:
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> _Parser:
    """The argument parser of the ``fastnn`` command."""
    parser = _Parser(
        prog=PROG,
        description="fastnn: train small and medium neural networks fast on a CPU.",
        epilog=(
            "examples:\n"
            "  fastnn demo --out-dir plots\n"
            "  fastnn train data.csv --target label --epochs 20 -o model.npz\n"
            "  fastnn predict model.npz new.csv -o predictions.csv\n"
            "  fastnn bench --quick\n\n"
            "Run 'fastnn COMMAND --help' for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _subparser(
        sub,
        "demo",
        "train XOR and a digits classifier; plot them and time both backends",
        "Train the classic design's XOR network (2-3-1 tanh, MSE, learning rate 0.1,\n"
        "per-sample SGD) and a handwritten-digits classifier on data that comes with\n"
        "fastnn; print accuracy and the training time of the Numba kernels next to their\n"
        "pure-NumPy twin on the same work; write xor_decision_surface.png and\n"
        "loss_curves.png. Nothing is downloaded.",
        "  fastnn demo --out-dir plots",
    )
    p.add_argument(
        "--out-dir", default=".", metavar="DIR", help="folder for the PNG files (default: .)"
    )
    p.add_argument("--quick", action="store_true", help="fewer epochs, for a smoke test")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling (default: 0)")
    p.set_defaults(func=cmd_demo)

    p = _subparser(
        sub,
        "train",
        "train a network on a CSV or .npz file and save it",
        "Train a feed-forward network on DATA and save it (fastnn.load reads it back).\n"
        "DATA is a CSV file with a header row (--target names the target column; default\n"
        "the last), or a .npz file with arrays X (n_samples, n_features) and y. With a\n"
        "cross-entropy loss the target holds class labels 0, 1, 2, ...; with mse any\n"
        "numbers. Features are used as they are: scale them first (e.g. to [0, 1]).\n"
        "A progress bar shows each epoch's loss when the output is a terminal.",
        "  fastnn train iris.csv --target species --layers 16 --epochs 50 \\\n"
        "      --plot loss.png -o iris.npz",
    )
    p.add_argument("data", metavar="DATA", help="training data, .csv or .npz")
    p.add_argument("--target", metavar="COLUMN", help="CSV column to predict (default: the last)")
    p.add_argument(
        "--layers",
        type=_layer_sizes,
        default=[64, 32],
        metavar="SIZES",
        help="hidden layer widths, comma-separated (default: 64,32)",
    )
    p.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="relu",
        help="hidden layers' activation (default: relu)",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default="cross_entropy",
        help="cross_entropy (classes), binary_cross_entropy (0/1) or mse "
        "(regression) (default: cross_entropy)",
    )
    p.add_argument("--epochs", type=_positive_int, default=20, metavar="N", help="(default: 20)")
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        metavar="N",
        help="samples per update; 1 is per-sample SGD (default: 32)",
    )
    p.add_argument(
        "--optimizer", choices=_optimizer_names(), default="adam", help="(default: adam)"
    )
    p.add_argument(
        "--learning-rate",
        type=_positive_float,
        metavar="RATE",
        help="(default: 0.001 for adam and adamw, 0.01 otherwise)",
    )
    p.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.1,
        metavar="F",
        help="share of DATA held out for validation (default: 0.1; 0: none)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the split, weights and shuffling (default: 0)"
    )
    p.add_argument(
        "--dtype", choices=("float64", "float32"), default="float64", help="(default: float64)"
    )
    p.add_argument("--threads", type=_positive_int, metavar="N", help="cores to use (default: all)")
    p.add_argument(
        "-o",
        "--output",
        default="model.npz",
        metavar="MODEL",
        help="model file to write (default: model.npz)",
    )
    p.add_argument("--plot", metavar="PNG", help="write the loss curves to this PNG file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or chatter")
    p.set_defaults(func=cmd_train)

    p = _subparser(
        sub,
        "predict",
        "predict with a saved model; write a CSV",
        "Load MODEL (written by 'fastnn train' or Network.save), predict every row of DATA\n"
        "(.csv with a header row, or .npz with an array X) and write a CSV: for a\n"
        "classifier the predicted class and each class's probability, for a regression\n"
        "the predicted values.",
        "  fastnn predict model.npz new.csv -o predictions.csv\n"
        "  fastnn predict model.npz labelled.csv --target label -o predictions.csv",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("data", metavar="DATA", help="data to predict, .csv or .npz")
    p.add_argument("--target", metavar="COLUMN", help="CSV column to leave out (e.g. the labels)")
    p.add_argument(
        "-o",
        "--output",
        default="predictions.csv",
        metavar="CSV",
        help="file to write (default: predictions.csv)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_predict)

    p = _subparser(
        sub,
        "bench",
        "time fastnn against other systems on the benchmark workloads",
        "Run the benchmark workloads and print a side-by-side table of median times and\n"
        "each system's time relative to fastnn; optionally save them as JSON and a bar\n"
        "chart.",
        "  fastnn bench --quick --threads 1 --json bench.json --plot bench.png",
    )
    p.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats")
    p.add_argument("--threads", type=_positive_int, metavar="N", help="cores to use (default: all)")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--plot", metavar="PNG", help="write a bar chart of the ratios")
    p.set_defaults(func=cmd_bench)
    return parser


def _optimizer_names() -> list[str]:
    from .optimizers import OPTIMIZERS

    return list(OPTIMIZERS)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastnn`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a user's mistake (reported on stderr
        in one line, without a traceback), 130 when interrupted.
    """
    from .network import TrainingDivergedError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, OSError, KeyError, TrainingDivergedError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
