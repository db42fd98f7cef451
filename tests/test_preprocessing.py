"""The learned preprocessing, the CSV reader under it, and the model file that carries
them (``fastnn.io``'s extra metadata and arrays)."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import io as fio
from fastnn.preprocessing import Preprocessing
from fastnn.tabular import read_csv, sniff_delimiter

pytest.importorskip("sklearn")

CSV = '\ufeffsize;colour;weight;kind\n1.5;red;10;"a"\n2.5;blue;NA;b\n3.5;red;30;a\n4.5;green;40;b\n'


def frame(tmp_path, text=CSV, name="d.csv"):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return read_csv(tmp_path / name)


def test_reader_columns_types_and_missing(tmp_path):
    f = frame(tmp_path)
    assert f.delimiter == ";" and f.names == ["size", "colour", "weight", "kind"]
    assert f.columns[1].dtype == object and list(f.columns[3]) == ["a", "b", "a", "b"]
    np.testing.assert_array_equal(np.isnan(f.columns[2]), [False, True, False, False])
    np.testing.assert_array_equal(f.lines, [2, 3, 4, 5])


def test_reader_decimal_commas(tmp_path):
    text = "x;y;z;w;v\n4,8;1,5e3;7;1.234,5;a,b\n-0,25;NA;8;2,5;c\n"
    f = frame(tmp_path, text)
    np.testing.assert_array_equal(f.columns[0], [4.8, -0.25])
    np.testing.assert_array_equal(f.columns[1], [1500.0, np.nan])
    # A point and a comma in one column may be thousands and decimals: text stays text.
    assert list(f.columns[3]) == ["1.234,5", "2,5"] and list(f.columns[4]) == ["a,b", "c"]
    # With commas between the fields, a quoted "4,8" is text.
    f = frame(tmp_path, 'x,y\n"4,8",1\n"5,1",2\n', name="c.csv")
    assert list(f.columns[0]) == ["4,8", "5,1"]


def test_reader_ignores_a_trailing_delimiter(tmp_path):
    f = frame(tmp_path, "a;b;\n1;x;\n2;y;\n")
    assert f.names == ["a", "b"] and len(f.columns) == 2
    f = frame(tmp_path, "a;b;\n1;x;3\n2;y;\n", name="e.csv")  # a value: a real column
    assert f.names == ["a", "b", ""]


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [("a,b\n1,2\n", ","), ("a;b\n1,5;2\n", ";"), ("a\tb\tc;d\n1\t2\t3;4\n", "\t"), ("a\n1\n", ",")],
)
def test_sniff_delimiter(sample, delimiter):
    assert sniff_delimiter(sample) == delimiter


def test_fit_transform_and_round_trip_through_a_model_file(tmp_path):
    prep, X, Y, notes = Preprocessing.fit(frame(tmp_path), ["kind"], impute=True)
    assert notes == [] and prep.task == "classification" and prep.labels == ["a", "b"]
    assert prep.categories == {"colour": ["blue", "green", "red"]}
    assert prep.fill["weight"] == pytest.approx(80 / 3)
    assert X.shape == (4, 5) and Y.shape == (4, 2)
    np.testing.assert_allclose(X[:, [0, 4]].mean(axis=0), 0, atol=1e-12)  # number columns
    np.testing.assert_array_equal(X[:, 1:4], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    net = fastnn.Network([fastnn.Dense(5, 2)], loss="cross_entropy")
    meta, arrays = prep.to_extra()
    fio.save(net, tmp_path / "m.npz", extra=({"preprocessing": meta}, arrays))
    again, extra, stored = fio.load_extra(tmp_path / "m.npz", backend="numpy")
    assert again.backend == "numpy" and fastnn.load(tmp_path / "m.npz").backend == "numba"
    back = Preprocessing.from_extra(extra["preprocessing"], stored, 5, 2)
    # The same steps on the same columns in another order, with the target left out.
    reordered = frame(tmp_path, "weight,size,colour\n,1.5,red\n20,2.5,blue\n", "r.csv")
    expected = prep.transform(frame(tmp_path))[:2]
    expected[0, 4] = (prep.fill["weight"] / prep.unit[4] - prep.center[4]) / prep.scale[4]
    np.testing.assert_array_equal(back.transform(reordered)[0], expected[0])
    # The extra content is under the checksum: an edited scale is refused.
    with np.load(tmp_path / "m.npz") as data:
        content = {k: data[k] for k in data.files}
    content["extra.scale"] = content["extra.scale"] * 2
    np.savez(tmp_path / "edited.npz", **content)
    with pytest.raises(ValueError, match="checksum"):
        fio.load_extra(tmp_path / "edited.npz")


def test_huge_values_standardise_without_overflow(tmp_path):
    text = "a,y\n1e308,0\n-1e308,1\n1e308,0\n-1e308,1\n"
    _, X, _, _ = Preprocessing.fit(frame(tmp_path, text, "h.csv"), ["y"])
    assert np.all(np.isfinite(X)) and np.allclose(np.abs(X), 1)


def test_integer_target_with_many_values_is_a_regression(tmp_path):
    rows = "".join(f"{i},{3 * i + i % 7}\n" for i in range(60))
    prep, _, Y, notes = Preprocessing.fit(frame(tmp_path, "x,y\n" + rows, "i.csv"), ["y"])
    assert prep.task == "regression" and Y.shape == (60, 1) and "60 distinct" in notes[0]
    prep, _, Y, notes = Preprocessing.fit(
        frame(tmp_path, "x,y\n" + rows, "i.csv"), ["y"], task="classification"
    )
    assert prep.task == "classification" and Y.shape == (60, 60) and notes == []
