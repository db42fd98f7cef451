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
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__
from .cli_common import EXIT_USAGE, PROG, CLIError, output_path, require
from .codes import LOSS_CODES
from .layers import ACTIVATIONS
from .validation import check_positive_int, install_hint

BENCH_INSTALL_HINT = install_hint("cli", "bench")
#: The status of a command whose output pipe was closed, as the shell reports one
#: killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other fastnn error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# -- argument types -------------------------------------------------------------------
def _positive_int(text: str) -> int:
    """An option's text as an integer >= 1 (``validation.check_positive_int``); the
    error quotes the text, as argparse prefixes the option's name."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    try:
        return check_positive_int("value", value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1") from None


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
    try:
        return [_positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer widths, e.g. 64,32 ({exc})"
        ) from None


# -- demo -----------------------------------------------------------------------------
def _timed_fit(net, X, Y, **kwargs) -> tuple[dict, float]:
    start = time.perf_counter()
    history = net.fit(X, Y, **kwargs)
    return history, time.perf_counter() - start


def _cnn_net(backend: str, seed: int):
    """The demo's digits CNN: 32 5×5 filters ("same": the 8×8 images keep their
    size), ReLU, 2×2 max pooling and a softmax layer over the 32×4×4 features."""
    from . import Network
    from .conv_layers import Conv2D, Flatten, MaxPool2D
    from .layers import Dense, ReLU

    layers = [Conv2D(1, 32, 5, padding="same"), ReLU(), MaxPool2D(2), Flatten(), Dense(512, 10)]
    return Network(layers, "cross_entropy", input_shape=(1, 8, 8), backend=backend, seed=seed)


def cmd_demo(args) -> int:
    from . import Network
    from .builders import mlp
    from .commands import build_network
    from .datasets import load_digits, stratified_split, xor
    from .plotting import plot_decision_surface, plot_loss_curves

    require("matplotlib", "fastnn demo")
    os.makedirs(args.out_dir, exist_ok=True)
    surface_png = os.path.join(args.out_dir, "xor_decision_surface.png")
    curves_png = os.path.join(args.out_dir, "loss_curves.png")
    xor_epochs, digit_epochs = (200, 3) if args.quick else (1000, 20)
    # The CNN's twin runs ~500x slower than the kernels: it trains one epoch on part
    # of the images, and its time is scaled to the kernels' work.
    cnn_epochs, cnn_twin_images = digit_epochs, 100 if args.quick else 300

    def xor_net(backend):
        return Network(mlp([2, 3, 1], "tanh", "tanh"), loss="mse", backend=backend, seed=args.seed)

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
        return build_network(
            64, [32], 10, "relu", "cross_entropy", dtype=np.float64, seed=args.seed, backend=backend
        )

    digit_fit = dict(learning_rate=0.01, batch_size=1, shuffle=True, validation_data=(Xte, yte))
    digits_net("numba").fit(
        Xtr[:8], ytr[:8], epochs=1, learning_rate=0.01, validation_data=(Xte[:8], yte[:8])
    )
    # The CNN's data: (n, 1, 8, 8) images, 25% of each digit held out for the test.
    images = Xd.reshape(-1, 1, 8, 8)
    c_train, c_test = stratified_split(yd, test_size=0.25, seed=args.seed)
    Ctr, cytr, Cte, cyte = images[c_train], yd[c_train], images[c_test], yd[c_test]
    cnn_fit = dict(learning_rate=0.01, batch_size=1, shuffle=True)
    _cnn_net("numba", args.seed).fit(
        Ctr[:8], cytr[:8], epochs=1, validation_data=(Cte[:8], cyte[:8]), **cnn_fit
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

    # Digits again, as (1, 8, 8) images through a small CNN, 25% stratified test split.
    net_c = _cnn_net("numba", args.seed)
    hist_c, t_cnn = _timed_fit(
        net_c, Ctr, cytr, epochs=cnn_epochs, validation_data=(Cte, cyte), **cnn_fit
    )
    cnn_acc = float(np.mean(net_c.predict(Cte).argmax(axis=1) == cyte))
    part = slice(0, cnn_twin_images)
    twin_c = _cnn_net("numpy", args.seed)
    _, t_part_np = _timed_fit(twin_c, Ctr[part], cytr[part], epochs=1, **cnn_fit)
    part_c = _cnn_net("numba", args.seed)
    part_c.fit(Ctr[part], cytr[part], epochs=1, **cnn_fit)
    scale = cnn_epochs * len(cytr) / cnn_twin_images
    print(
        f"Digits as 1x8x8 images, CNN Conv2D(1, 32, 5, same)-ReLU-MaxPool2D(2)-Dense(512, 10), "
        f"{cnn_epochs} epochs:"
    )
    print(f"  {len(cytr)} training, {len(cyte)} test images (25% of each digit held out)")
    print(f"  test accuracy {cnn_acc:.1%}, test loss {hist_c['val_loss'][-1]:.3f}")
    print()

    print("Training time, the same work on both backends (same networks, seeds and epochs):")
    rows = [
        ("XOR", t_xor, t_xor_np),
        ("digits", t_dig, t_dig_np),
        ("CNN*", t_cnn, t_part_np * scale),
    ]
    print(f"  {'':8}{'fastnn (numba)':>16}{'NumPy twin':>14}{'speed-up':>10}")
    for name, fast, slow in rows:
        print(f"  {name:8}{fast:>15.3f}s{slow:>13.3f}s{slow / fast:>9.1f}x")
    print(f"  Both backends end with the same weights (largest difference {same:.1e}).")
    cnn_same = float(np.max(np.abs(part_c.params - twin_c.params)))
    print(
        f"  * The CNN's twin trained 1 epoch on {cnn_twin_images} of the {len(cytr)} images in "
        f"{t_part_np:.2f} s (no test-set\n    pass per epoch, which the kernels' time includes), "
        f"scaled by {scale:.0f} to {cnn_epochs} epochs;\n    on that part both backends end with "
        f"the same weights (largest difference {cnn_same:.1e})."
    )
    print()

    plot_decision_surface(net_x, X, Y, surface_png, title="XOR: network output")
    plot_loss_curves(
        {
            "XOR (training loss)": hist_x,
            "Digits": {"train loss": hist_d["loss"], "test loss": hist_d["val_loss"]},
            "Digits CNN": {"train loss": hist_c["loss"], "test loss": hist_c["val_loss"]},
        },
        curves_png,
    )
    print(f"Wrote {surface_png} and {curves_png}.")
    return 0


# -- bench ------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    args.json = output_path(args.json, "--json")
    args.plot = output_path(args.plot, "--plot")
    if args.plot:
        require("matplotlib", "--plot")
    require("threadpoolctl", "fastnn bench", BENCH_INSTALL_HINT)
    from . import benchmarks
    from .threads import available_cores

    families = None
    if args.only is not None:
        families = [f.strip() for f in args.only.split(",") if f.strip()]
        unknown = [f for f in families if f not in benchmarks.FAMILIES]
        if unknown or not families:
            raise CLIError(
                f"--only {args.only!r}: name families from {', '.join(benchmarks.FAMILIES)}, "
                "separated by commas, e.g. --only cli,contention"
            )
    # Before Numba, torch or JAX load: they read their thread settings once.
    benchmarks.pin_environment(args.threads or available_cores())
    rows = benchmarks.run(quick=args.quick, threads=args.threads, families=families)
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
            "  fastnn evaluate model.npz test.csv\n"
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
        "train XOR, a digits classifier and a digits CNN; plot them and time both backends",
        "Train the classic design's XOR network (2-3-1 tanh, MSE, learning rate 0.1,\n"
        "per-sample SGD), a handwritten-digits classifier and a small convolutional\n"
        "network on the same digits as 1x8x8 images, on data that comes with fastnn;\n"
        "print accuracy and the training time of the Numba kernels next to their\n"
        "pure-NumPy twin on the same work (the CNN's twin trains on part of it, and its\n"
        "time is scaled); write xor_decision_surface.png and loss_curves.png. Nothing is\n"
        "downloaded.",
        "  fastnn demo --out-dir plots",
    )
    p.add_argument(
        "--out-dir", default=".", metavar="DIR", help="folder for the PNG files (default: .)"
    )
    p.add_argument("--quick", action="store_true", help="fewer epochs, for a smoke test")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling (default: 0)")
    p.set_defaults(func=cmd_demo)

    _add_train(sub)
    _add_predict(sub)
    _add_evaluate(sub)

    p = _subparser(
        sub,
        "bench",
        "time fastnn against other systems on the benchmark workloads",
        "Run the benchmark workloads and print a side-by-side table of median times and\n"
        "each system's time relative to fastnn; optionally save them as JSON and a bar\n"
        "chart.",
        "  fastnn bench --quick --threads 1 --json bench.json --plot bench.png\n"
        "  fastnn bench --only cli,contention --json bench.json",
    )
    p.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats")
    p.add_argument("--threads", type=_positive_int, metavar="N", help="cores to use (default: all)")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--plot", metavar="PNG", help="write a bar chart of the ratios")
    p.add_argument(
        "--only",
        metavar="FAMILIES",
        help="comma-separated workload families to run, e.g. cli,contention (default: all)",
    )
    p.set_defaults(func=cmd_bench)
    return parser


def _add_data_options(p: _Parser) -> None:
    p.add_argument(
        "--index-col",
        action="store_true",
        help="drop the first column, an index as pandas writes one; it must have no name "
        "in the header (a named first column is refused: it may be data)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _add_model_and_data(p: _Parser, data: str, target: str) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("data", metavar="DATA", help=f"{data}, .csv or .npz")
    p.add_argument("--target", action="append", metavar="COLUMN", help=target)


def _add_train(sub) -> None:
    p = _subparser(
        sub,
        "train",
        "train a network on a CSV or .npz file and save it",
        "Train a feed-forward network on DATA and save it with what it learned about the\n"
        "data. DATA is a CSV file with a header row (comma, semicolon or tab separated,\n"
        "decimal commas allowed with the last two; empty and NA cells are missing values)\n"
        "or a .npz file with arrays X and y. The target column (--target; default the\n"
        "last) decides the task: text or whole-number labels make a classifier, other\n"
        "numbers a regression (--task to choose). Number columns are standardised\n"
        "(--no-scale: used as they are), text columns one-hot encoded; the model file\n"
        "keeps the column names, scaling, categories and class labels, so predict and\n"
        "evaluate apply the same steps. With a validation split (10% by default, when\n"
        "that is 20 rows or more), training stops early once the validation loss stops\n"
        "improving and keeps the best epoch's weights; without one, once the training\n"
        "loss stops falling by 1e-4, as scikit-learn's MLPs do. The initial weights are\n"
        "those scikit-learn's MLPClassifier draws for random_state=--seed.",
        "  fastnn train iris.csv --target species -o iris.npz\n"
        "  fastnn train houses.csv --target price --impute --plot loss.png -o houses.npz",
    )
    p.add_argument("data", metavar="DATA", help="training data, .csv or .npz")
    p.add_argument(
        "--target",
        action="append",
        metavar="COLUMN",
        help="column to predict (default: the last); repeat it for several regression targets",
    )
    p.add_argument(
        "--task",
        choices=("classification", "regression"),
        help="override the task the target implies",
    )
    p.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="use number columns as they are, not standardised",
    )
    p.add_argument(
        "--impute",
        action="store_true",
        help="fill missing values with the training mean (numbers) or most frequent value "
        "(text); without it a missing value is an error",
    )
    p.add_argument(
        "--layers",
        type=_layer_sizes,
        default=[64, 32],
        metavar="SIZES",
        help="hidden layer widths, comma-separated (default: 64,32)",
    )
    p.add_argument(
        "--activation",
        choices=sorted(ACTIVATIONS),
        default="relu",
        help="hidden layers' activation (default: relu)",
    )
    p.add_argument(
        "--loss",
        choices=list(LOSS_CODES),
        help="cross_entropy (classes), binary_cross_entropy (2 classes) or mse (regression) "
        "(default: cross_entropy for a classifier, mse for a regression)",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=200,
        metavar="N",
        help="most epochs to train (default: 200)",
    )
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
        metavar="F",
        help="share of DATA held out for validation (default: 0.1 when that is at least "
        "20 rows, else none; 0: none)",
    )
    p.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        help="stop when the validation loss (or without validation data, the training "
        "loss, by 1e-4) has not improved for --patience epochs, and keep the best epoch's "
        "weights (default: on)",
    )
    p.add_argument(
        "--patience",
        type=_positive_int,
        default=10,
        metavar="N",
        help="epochs without improvement before early stopping (default: 10)",
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
        help="model file to write (default: model.npz; a symbolic link is followed)",
    )
    p.add_argument("--plot", metavar="PNG", help="write the loss curves to this PNG file")
    _add_data_options(p)
    p.set_defaults(func=_command("cmd_train"))


def _add_predict(sub) -> None:
    p = _subparser(
        sub,
        "predict",
        "predict with a saved model; write a CSV",
        "Load MODEL (written by 'fastnn train' or Network.save), predict every row of DATA\n"
        "(.csv with a header row, or .npz with an array X) and write a CSV. The model\n"
        "picks its feature columns by name, in any order; other columns (the target)\n"
        "are ignored. A classifier writes the column prediction (the class label as in\n"
        "training) and a column probability_LABEL per class; a regression writes\n"
        "prediction (prediction_TARGET for several targets).",
        "  fastnn predict model.npz new.csv -o predictions.csv",
    )
    _add_model_and_data(
        p, "data to predict", "for a model saved without its columns: a column to leave out"
    )
    p.add_argument(
        "--precision",
        type=_positive_int,
        metavar="DIGITS",
        help="significant digits of the numbers written (default: 6 for probabilities, "
        "all that round-trip for regression values)",
    )
    p.add_argument(
        "-o",
        "--output",
        default="predictions.csv",
        metavar="CSV",
        help="file to write, or - for standard output (default: predictions.csv; a "
        "symbolic link is followed)",
    )
    _add_data_options(p)
    p.set_defaults(func=_command("cmd_predict"))


def _add_evaluate(sub) -> None:
    p = _subparser(
        sub,
        "evaluate",
        "score a saved model on labelled data",
        "Predict every row of DATA with MODEL and compare with its target column:\n"
        "accuracy, balanced accuracy, macro F1 and the confusion matrix for a\n"
        "classifier; RMSE, MAE and R² for a regression.",
        "  fastnn evaluate model.npz test.csv --plot confusion.png",
    )
    _add_model_and_data(
        p, "labelled data", "the column of true values (default: the model's target)"
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="write the confusion matrix (classifier) or predicted against true values "
        "(regression) to this PNG file",
    )
    _add_data_options(p)
    p.set_defaults(func=_command("cmd_evaluate"))


def _command(name: str):
    """The subcommand ``name`` of fastnn.commands, imported when it runs."""

    def run(args) -> int:
        from . import commands

        return getattr(commands, name)(args)

    return run


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
        in one line, without a traceback), 130 when interrupted, 141 (quietly) when
        the pipe its output goes to is closed early, as ``| head`` does.
    """
    from .network import TrainingDivergedError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        # Overflow in a user's data is reported as one error, not as NumPy warnings.
        with np.errstate(all="ignore"):
            return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output (head, say) has all it wanted: no error. Point
        # stdout at /dev/null so that Python's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError as exc:
        print(
            f"{PROG}: error: out of memory ({_one_line(exc)}); use smaller layers or less data",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (CLIError, ValueError, TypeError, OSError, KeyError, TrainingDivergedError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
