"""scikit-learn's own tests of MLPClassifier and MLPRegressor, run on fastnn.

The test file ships inside the installed scikit-learn
(``sklearn/neural_network/tests/test_mlp.py``). It is loaded here as a module of its
own, its two class names are rebound to ``FastMLPClassifier`` and
``FastMLPRegressor``, and each of its test functions is collected as a test of this
module, unedited: the functions look their estimators up in that module's namespace
when they run. ``EXCLUDED`` lists, in one place, the tests that cannot hold for
another implementation, each with its reason.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

from fastnn.sklearn import FastMLPClassifier, FastMLPRegressor  # noqa: E402

#: test name -> why it cannot run against fastnn's estimators. (The two
#: n_iter_no_change tests read `_no_improvement_count`, which fastnn keeps with
#: scikit-learn's meaning, so they run.)
EXCLUDED: dict[str, str] = {
    "test_gradient": "reads the private method `_loss_grad_lbfgs` of scikit-learn's MLP",
    "test_learning_rate_warmstart": "reads the private attribute `_optimizer`",
    "test_adaptive_learning_rate": "reads the private attribute `_optimizer`",
}

SUITE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"


def _load_suite():
    spec = importlib.util.spec_from_file_location("sklearn_test_mlp_on_fastnn", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.MLPClassifier = FastMLPClassifier
    module.MLPRegressor = FastMLPRegressor
    return module


_SUITE = _load_suite() if SUITE.exists() else None


@pytest.fixture(params=[0, 42])
def global_random_seed(request):
    """scikit-learn's conftest fixture of the same name, two of its seeds."""
    return request.param


def _collect(module) -> dict:
    tests = {}
    for name, func in inspect.getmembers(module, inspect.isfunction):
        if not name.startswith("test_") or func.__module__ != module.__name__:
            continue
        if name in EXCLUDED:
            func = pytest.mark.skip(reason=EXCLUDED[name])(func)
        tests[name] = func
    return tests


if _SUITE is not None:
    globals().update(_collect(_SUITE))


def test_suite_is_found():
    """The suite exists and every exclusion names one of its tests, so an exclusion
    never outlives the test it excuses."""
    assert _SUITE is not None, f"scikit-learn's test_mlp.py is not at {SUITE}"
    names = {n for n in dir(_SUITE) if n.startswith("test_")}
    assert set(EXCLUDED) <= names
    assert len(names) >= 40
