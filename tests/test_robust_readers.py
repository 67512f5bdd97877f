"""Issue 16 (part B), readers: bad files give a DataError naming file, line/row group and column.

Every case below altered data without a word, crashed with a raw library error, or
reported the wrong place before the fix (the ``defect`` ones), or pins a message
that was already right. Round trips of random valid frames through CSV and Parquet
(hypothesis, seeded) check that nothing is lost or changed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentrec.data import movielens as ml
from latentrec.data.readers import MAX_ID_LENGTH, read_interactions
from latentrec.errors import MAX_QUOTED, DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

H = "user,item,rating\n"
HT = "user,item,rating,ts\n"

# (case id, file name, bytes, read_interactions kwargs, regex the message must match)
TEXT_CASES = [
    # ---- values that used to be altered silently (defects of issue 16)
    ("rating-1e40", "r.csv", H + "1,2,3\n1,3,1e40\n", {}, r"line 3: column 'rating' is 1e\+40, outside the float32 range"),
    ("rating--1e39", "r.csv", H + "1,2,-1e39\n", {}, r"line 2: column 'rating' is -1e\+39, outside the float32 range"),
    ("rating-1e-50", "r.csv", H + "1,2,1e-50\n", {}, r"line 2: column 'rating' is 1e-50, outside the float32 range"),
    ("timestamp-1e30", "r.csv", HT + "1,2,3,1e30\n", {"timestamp": "ts"},
     r"line 2: timestamp \(column 'ts'\) is 1e\+30, outside the int64 range"),
    ("timestamp--1e19", "r.csv", HT + "1,2,3,5\n2,2,3,-1e19\n", {"timestamp": "ts"},
     r"line 3: timestamp \(column 'ts'\) is -1e\+19, outside the int64 range"),
    ("float-id-1.5e20", "r.csv", H + "1.5e20,2,3\n", {}, r"line 2: user id \(column 'user'\) is 1\.5e\+20, beyond 2\*\*53"),
    ("float-id-2**60", "r.csv", H + "1,1152921504606846976.0,3\n", {}, r"line 2: item id \(column 'item'\) .* beyond 2\*\*53"),
    ("int-id-beyond-int64", "r.csv", H + "1,2,3\n99999999999999999999,3,4\n", {},
     r"line 3: user id \(column 'user'\) '99999999999999999999' is outside the int64 range.*id_type='str'"),
    ("int-id-beyond-uint64-item", "r.csv", H + "1,2,3\n2,-99999999999999999999,4\n", {},
     r"line 3: item id \(column 'item'\) '-99999999999999999999' is outside the int64 range"),
    ("uint64-id", "r.csv", H + "1,2,3\n18446744073709551615,3,4\n", {},
     r"line 3: user id \(column 'user'\) 18446744073709551615 is outside the int64 range"),
    ("int-id-beyond-int64-id_type-int", "r.csv", H + "1,2,3\n99999999999999999999,3,4\n", {"id_type": "int"},
     r"line 3: user id .* outside the int64 range"),
    ("duplicated-header", "r.csv", "user,item,rating,rating\n1,2,3,4\n", {},
     r"r\.csv: column 'rating' appears twice in the header \(columns 3 and 4\)"),
    ("duplicated-user-header", "r.csv", "user,user,item,rating\n1,2,3,4\n", {},
     r"column 'user' appears twice in the header \(columns 1 and 2\)"),
    ("duplicated-header-tsv", "r.tsv", "user\titem\titem\trating\n1\t2\t3\t4\n", {}, r"column 'item' appears twice"),
    ("over-long-id", "r.csv", H + "x" * 5000 + ",2,3\n", {},
     r"line 2: user id \(column 'user'\) is 5,000 characters long .*at most %d" % MAX_ID_LENGTH),
    ("over-long-str-id", "r.csv", H + "1," + "y" * 2000 + ",3\n", {"id_type": "str"},
     r"line 2: item id \(column 'item'\) is 2,000 characters long"),
    ("over-long-rating", "r.csv", H + "1,2," + "z" * 3000 + "\n", {},
     r"line 2: column 'rating' is 'z{%d}'\.\.\. \(3,000 characters\); expected a number" % MAX_QUOTED),
    ("latin1-line-3", "r.csv", (H + "1,2,3\nJos\xe9,3,4\n").encode("latin-1"), {},
     r"line 3, byte offset 26 of the file \(byte 0xe9\): cannot decode as utf-8"),
    ("latin1-line-2-col-2", "r.csv", (H + "1,caf\xe9,3\n").encode("latin-1"), {}, r"line 2, byte offset 22 "),
    ("bad-byte-deep", "r.csv", (H + "1,2,3\n" * 50 + "2,\xff,3\n").encode("latin-1"), {},
     r"line 52, byte offset %d " % (len(H) + 6 * 50 + 2)),
    ("unclosed-quote-line-2", "r.csv", H + '"1,2,3\n2,3,4\n', {}, r"line 2: a quoted field \('\"'\) opens here and is never closed"),
    ("unclosed-quote-line-4", "r.csv", H + '1,2,3\n\n2,"3,4\n5,6,7\n', {}, r"line 4: a quoted field"),
    ("mixed-iso-epoch", "r.csv", HT + "1,2,3,2020-01-01\n2,3,4,1600000000\n", {"timestamp": "ts"},
     r"timestamp \(column 'ts'\) mixes ISO dates \('2020-01-01' at line 2\) and numbers \('1600000000' at line 3\)"),
    ("mixed-epoch-iso", "r.csv", HT + "1,2,3,1600000000\n2,3,4,2020-01-01T10:00:00\n", {"timestamp": "ts"},
     r"mixes ISO dates \('2020-01-01T10:00:00' at line 3\) and numbers \('1600000000' at line 2\)"),
    ("long-mixed-id-quoted-short", "r.csv", H + "1,2,3\n" + "a" * 900 + ",3,4\n", {},
     r"mixed types: integer '1' at line 2, text 'a{%d}'\.\.\. \(900 characters\) at line 3" % MAX_QUOTED),
    # ---- already clear: pinned so they stay so
    ("not-a-number", "r.csv", H + "1,2,three\n", {}, r"line 2: column 'rating' is 'three'; expected a number"),
    ("nan-rating", "r.csv", H + "1,2,nan\n", {}, r"line 2: column 'rating' is missing or NaN"),
    ("empty-rating", "r.csv", H + "1,2,\n", {}, r"line 2: column 'rating' is missing or NaN"),
    ("inf-rating", "r.csv", H + "1,2,inf\n", {}, r"line 2: column 'rating' is inf; expected a finite number"),
    ("neg-inf-rating", "r.csv", H + "1,2,-inf\n", {}, r"line 2: column 'rating' is -inf; expected a finite number"),
    ("outside-scale", "r.csv", H + "1,2,6\n", {"rating_scale": (1, 5)}, r"line 2: column 'rating' is 6, outside the declared"),
    ("missing-user", "r.csv", H + "1,2,3\n,2,3\n", {}, r"line 3: user id \(column 'user'\) is missing"),
    ("missing-item", "r.csv", H + "1,,3\n", {}, r"line 2: item id \(column 'item'\) is missing"),
    ("fractional-id", "r.csv", H + "1.5,2,3\n", {}, r"line 2: user id \(column 'user'\) is 1\.5; expected an integer"),
    ("text-with-id_type-int", "r.csv", H + "abc,2,3\n", {"id_type": "int"}, r"user id \(column 'user'\) is 'abc'; expected an integer"),
    ("mixed-ids", "r.csv", H + "1,2,3\nabc,2,3\n", {}, r"user ids \(column 'user'\) are of mixed types"),
    ("ragged", "r.csv", H + "1,2,3\n1,2,3,4\n", {}, r"Expected 3 fields in line 3, saw 4"),
    ("wrong-separator", "r.csv", "user;item;rating\n1;2;3\n", {}, r"only one column found .* is the separator ';'"),
    ("missing-column", "r.csv", "u,item,rating\n1,2,3\n", {}, r"user column 'user' not found; the columns found are"),
    ("missing-ts-column", "r.csv", H + "1,2,3\n", {"timestamp": "ts"}, r"timestamp column 'ts' not found"),
    ("bad-timestamp", "r.csv", HT + "1,2,3,5\n1,3,3,yesterday\n", {"timestamp": "ts"},
     r"line 3: timestamp \(column 'ts'\) is 'yesterday'; expected a number"),
    ("bad-iso-date", "r.csv", HT + "1,2,3,2020-01-01\n1,3,3,2020-13-45\n", {"timestamp": "ts"},
     r"line 3: timestamp \(column 'ts'\) is '2020-13-45'; expected seconds since the epoch or an ISO date"),
    ("empty-file", "r.csv", "", {}, r"r\.csv is empty"),
    ("header-only", "r.csv", H, {}, r"has a header .* but no data rows"),
    ("duplicate-pair", "r.csv", H + "1,2,3\n1,2,4\n", {}, r"\(user 1, item 2\) appears on line 2 and line 3"),
    ("negative-implicit", "r.csv", H + "1,2,-1\n", {"implicit": True}, r"line 2: weight -1 is negative"),
    ("bad-policy", "r.csv", H + "1,2,3\n", {"duplicates": "max"}, r"duplicates must be one of"),
    ("bad-id-type", "r.csv", H + "1,2,3\n", {"id_type": "float"}, r"id_type must be None, 'int' or 'str'"),
]


@pytest.mark.parametrize("name,text,kwargs,pattern", [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_bad_text_file(tmp_path, name, text, kwargs, pattern):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(DataError, match=pattern) as info:
        read_interactions(path, **kwargs)
    message = str(info.value)
    assert str(path) in message or "must be" in message
    assert len(message) < 600, "a message must never echo a whole field"


def _parquet(path, table, **kwargs):
    pq.write_table(table, path, **kwargs)
    return path


def _ts(values, unit="s", tz=None):
    return pa.array(values, pa.timestamp(unit, tz=tz))


PARQUET_CASES = [
    ("list-user", lambda: pa.table({"user": [[1, 2], [3]], "item": [1, 2], "rating": [1.0, 2.0]}), {}, {},
     r"row 1 \(row group 1 of 1\): user id \(column 'user'\) is a list-like"),
    ("list-item", lambda: pa.table({"user": [1, 2], "item": [[1], [2, 3]], "rating": [1.0, 2.0]}), {}, {},
     r"row 1 .*item id \(column 'item'\) is a list-like"),
    ("list-rating", lambda: pa.table({"user": [1, 2], "item": [1, 2], "rating": [[1.0], [2.0]]}), {}, {},
     r"row 1 .*column 'rating' is a list-like"),
    ("struct-user", lambda: pa.table({"user": [{"a": 1}, {"a": 2}], "item": [1, 2], "rating": [1.0, 2.0]}), {}, {},
     r"user id \(column 'user'\) is a list-like dict"),
    ("null-timestamp", lambda: pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0], "ts": _ts([1, None])}),
     {"row_group_size": 1}, {"timestamp": "ts"}, r"row 2 \(row group 2 of 2\): timestamp \(column 'ts'\) is missing \(null\)"),
    ("null-rating", lambda: pa.table({"user": [1, 2], "item": [1, 2], "rating": pa.array([1.0, None])}), {}, {},
     r"row 2 \(row group 1 of 1\): column 'rating' is missing or NaN"),
    ("null-user", lambda: pa.table({"user": pa.array([1, None]), "item": [1, 2], "rating": [1.0, 2.0]}), {}, {},
     r"row 2 .*user id \(column 'user'\) is missing"),
    ("float-id-1.5e20", lambda: pa.table({"user": [1.0, 1.5e20], "item": [1, 2], "rating": [1.0, 2.0]}), {}, {},
     r"row 2 .*user id \(column 'user'\) is 1\.5e\+20, beyond 2\*\*53"),
    ("uint64-id", lambda: pa.table({"user": pa.array([1, 2 ** 64 - 1], pa.uint64()), "item": [1, 2], "rating": [1.0, 2.0]}),
     {}, {}, r"row 2 .*user id \(column 'user'\) 18446744073709551615 is outside the int64 range"),
    ("rating-1e40", lambda: pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, 1e40]}), {}, {},
     r"row 2 .*column 'rating' is 1e\+40, outside the float32 range"),
    ("timestamp-1e30", lambda: pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0], "ts": [1.0, 1e30]}), {},
     {"timestamp": "ts"}, r"row 2 .*timestamp \(column 'ts'\) is 1e\+30, outside the int64 range"),
    ("bool-user", lambda: pa.table({"user": [True, False], "item": [1, 2], "rating": [1.0, 2.0]}), {}, {},
     r"user column 'user' holds booleans"),
    ("bool-rating", lambda: pa.table({"user": [1, 2], "item": [1, 2], "rating": [True, False]}), {}, {},
     r"column 'rating' holds booleans"),
    ("over-long-id", lambda: pa.table({"user": ["a", "b" * 4000], "item": [1, 2], "rating": [1.0, 2.0]}), {}, {},
     r"row 2 .*user id \(column 'user'\) is 4,000 characters long"),
    ("missing-column", lambda: pa.table({"u": [1], "item": [1], "rating": [1.0]}), {}, {}, r"user column 'user' not found"),
    ("empty", lambda: pa.table({"user": pa.array([], pa.int64()), "item": pa.array([], pa.int64()),
                                "rating": pa.array([], pa.float64())}), {}, {}, r"no data rows"),
]


@pytest.mark.parametrize("make,write_kw,kwargs,pattern", [c[1:] for c in PARQUET_CASES],
                         ids=[c[0] for c in PARQUET_CASES])
def test_bad_parquet_file(tmp_path, make, write_kw, kwargs, pattern):
    path = _parquet(tmp_path / "r.parquet", make(), **write_kw)
    with pytest.raises(DataError, match=pattern):
        read_interactions(path, **kwargs)


@pytest.mark.parametrize("content", [b"not parquet", b"", b"PAR1" + b"\0" * 20, b"user,item,rating\n1,2,3\n"],
                         ids=["text", "empty", "bad-footer", "csv-named-parquet"])
def test_corrupt_parquet_is_a_data_error(tmp_path, content):
    # issue 16: a .parquet that is not Parquet raised a raw pyarrow error
    path = tmp_path / "r.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"r\.parquet is not a readable Parquet file"):
        read_interactions(path)


def test_truncated_parquet_is_a_data_error(tmp_path):
    path = _parquet(tmp_path / "r.parquet", pa.table({"user": list(range(100)), "item": [1] * 100, "rating": [1.0] * 100}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + data[-8:])  # keeps the magic footer, loses the middle
    with pytest.raises(DataError, match=r"r\.parquet"):
        read_interactions(path)


def test_tz_aware_parquet_timestamp_is_read_as_utc(tmp_path):
    # issue 16: a tz-aware Parquet timestamp raised a raw pandas TypeError
    ts = _ts([0, 3600], tz="Europe/Paris")
    path = _parquet(tmp_path / "r.parquet", pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0], "ts": ts}))
    assert read_interactions(path, timestamp="ts").timestamps.tolist() == [0, 3600]


def test_duplicated_parquet_column(tmp_path):
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2]), pa.array([3.0]), pa.array([4.0])],
                                 names=["user", "item", "rating", "rating"])
    path = _parquet(tmp_path / "r.parquet", table)
    with pytest.raises(DataError, match=r"column 'rating' appears twice in the Parquet schema"):
        read_interactions(path)


def test_integer_ids_near_the_int64_limit_are_kept_exactly(tmp_path):
    big = 2 ** 63 - 1
    path = tmp_path / "r.csv"
    path.write_text(f"{H}{big},1,3\n{-big - 1},2,4\n")
    assert sorted(read_interactions(path).users.ids.tolist()) == [-big - 1, big]


# ---------------------------------------------------------------------------- MovieLens parsers
ML_CASES = [
    ("100k", "u.data", "1\t1\t5\t881250949\n\n1\tx\t3\t881250950\n", r"u\.data, line 3: column 'item' is 'x'"),
    ("100k", "u.data", "1\t1\t5\t881250949\n1\t2\tfive\t881250950\n", r"u\.data, line 2: column 'rating' is 'five'; expected a number"),
    ("100k", "u.data", "1\t1\t5\t881250949\n1\t2\t3\t1.5\n", r"u\.data, line 2: column 'timestamp' is '1\.5'; expected an integer"),
    ("100k", "u.data", "1\t1\t5\t881250949\n99999999999\t2\t3\t1\n", r"u\.data, line 2: column 'user' is '99999999999'"),
    ("dat", "movies.dat", "1::Toy Story (1995)::Comedy\nabc::Heat (1995)::Action\n", r"movies\.dat, line 2: the movie id is 'abc'"),
    ("dat", "movies.dat", "1::Toy Story (1995)::Comedy\n2::no genres\n", r"movies\.dat, line 2: expected 3 '::'-separated fields"),
    ("dat", "users.dat", "1::F::1::10::48067\n2::M::old::16::70072\n", r"users\.dat, line 2: the age is 'old'"),
    ("dat", "users.dat", "1::F::1::10\n", r"users\.dat, line 1: expected 5 '::'-separated fields"),
    ("dat", "ratings.dat", "1::1193::5::978300760\n1::661::x::978302109\n", r"ratings\.dat, line 2: column 'rating' is 'x'"),
]


def _write_ml(folder, fmt):
    folder.mkdir()
    if fmt == "100k":
        (folder / "u.data").write_text("1\t1\t5\t881250949\n")
    else:
        (folder / "ratings.dat").write_text("1::1::5::978300760\n")
        (folder / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n")
        (folder / "users.dat").write_text("1::F::1::10::48067\n")
    return folder


@pytest.mark.parametrize("fmt,fname,text,pattern", ML_CASES, ids=[f"{c[1]}-{k}" for k, c in enumerate(ML_CASES)])
def test_movielens_garbage_names_the_line(tmp_path, fmt, fname, text, pattern):
    folder = _write_ml(tmp_path / "x", fmt)
    (folder / fname).write_text(text)
    with pytest.raises(DataError, match=pattern):
        ml.load_movielens(path=folder)


# ---------------------------------------------------------------------------- round trips
_text_id = st.text(st.sampled_from("abcXYZ019 _-,;|\"'é"), min_size=0, max_size=8).map(lambda s: "u" + s)
_int_id = st.integers(-2 ** 63, 2 ** 63 - 1)
_rating = st.floats(allow_nan=False, allow_infinity=False, width=32)
_stamp = st.integers(-2 ** 40, 2 ** 40)


@st.composite
def _frames(draw):
    string_ids = draw(st.booleans())
    ident = _text_id if string_ids else _int_id
    n = draw(st.integers(1, 25))
    users = draw(st.lists(ident, min_size=n, max_size=n))
    items = draw(st.lists(ident, min_size=n, max_size=n, unique=True))  # unique pairs
    return pd.DataFrame({"user": pd.Series(users, dtype=object if string_ids else np.int64),
                         "item": pd.Series(items, dtype=object if string_ids else np.int64),
                         "rating": np.array(draw(st.lists(_rating, min_size=n, max_size=n)), dtype=np.float32),
                         "timestamp": np.array(draw(st.lists(_stamp, min_size=n, max_size=n)), dtype=np.int64)}), string_ids


def _same(frame: pd.DataFrame, data) -> None:
    got = data.to_frame().sort_values(["user", "item"]).reset_index(drop=True)
    want = frame.sort_values(["user", "item"]).reset_index(drop=True)
    assert got["user"].tolist() == want["user"].tolist()
    assert got["item"].tolist() == want["item"].tolist()
    np.testing.assert_array_equal(got["rating"].to_numpy(np.float32), want["rating"].to_numpy(np.float32))
    assert got["timestamp"].tolist() == want["timestamp"].tolist()


@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_frames(), ext=st.sampled_from([".csv", ".tsv", ".psv"]))
def test_text_round_trip_loses_and_changes_nothing(tmp_path, case, ext):
    frame, string_ids = case
    path = tmp_path / f"r{ext}"
    frame.to_csv(path, sep={".csv": ",", ".tsv": "\t", ".psv": "|"}[ext], index=False)
    data = read_interactions(path, timestamp="timestamp", id_type="str" if string_ids else None)
    _same(frame, data)


@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_frames(), groups=st.integers(1, 30))
def test_parquet_round_trip_loses_and_changes_nothing(tmp_path, case, groups):
    frame, _ = case
    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=groups)
    _same(frame, read_interactions(path, timestamp="timestamp"))
