"""Generic readers: every bad input is its own test, named by file and line; round trips with hypothesis."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentrec.data.readers import read_interactions
from latentrec.errors import DataError, MissingDependencyError


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------------------- good input
def test_reads_csv_with_timestamps(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating,ts\n1,10,4,100\n2,10,3.5,200\n3,11,5,300\n")
    data = read_interactions(p, timestamp="ts", rating_scale=(0.5, 5))
    assert (len(data), data.n_users, data.n_items) == (3, 3, 2)
    assert data.rating_scale == (0.5, 5.0) and data.name == str(p)
    frame = data.to_frame()
    assert frame.values.tolist() == [[1, 10, 4.0, 100], [2, 10, 3.5, 200], [3, 11, 5.0, 300]]


def test_tsv_and_psv_from_extension(tmp_path):
    for name, sep in (("r.tsv", "\t"), ("r.psv", "|")):
        p = write(tmp_path, name, f"user{sep}item{sep}rating\n1{sep}2{sep}3\n")
        assert len(read_interactions(p)) == 1


def test_column_mapping_and_crlf(tmp_path):
    p = write(tmp_path, "r.csv", "userId,movieId,stars\r\n1,2,3\r\n4,5,1\r\n")
    data = read_interactions(p, user="userId", item="movieId", rating="stars")
    assert sorted(data.to_frame()["user"].tolist()) == [1, 4]


def test_headerless_file_with_positions(tmp_path):
    p = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    data = read_interactions(p, user=0, item=1, rating=2, timestamp=3, header=False, sep="\t")
    assert len(data) == 2 and data.timestamps.tolist() == [881250949, 891717742]


def test_separator_guessed_for_unknown_extension(tmp_path):
    p = write(tmp_path, "r.txt", "user;item;rating\n1;2;3\n")
    assert len(read_interactions(p)) == 1


def test_implicit_without_rating_counts_repeats(tmp_path):
    p = write(tmp_path, "clicks.csv", "user,item\na,x\na,x\na,y\nb,x\n")
    data = read_interactions(p, rating=None)
    frame = data.to_frame().sort_values(["user", "item"])
    assert data.is_implicit
    assert frame.values.tolist() == [["a", "x", 2.0], ["a", "y", 1.0], ["b", "x", 1.0]]


def test_implicit_flag_with_absent_rating_column(tmp_path):
    p = write(tmp_path, "clicks.csv", "user,item\n1,2\n")
    assert read_interactions(p, implicit=True).values.tolist() == [1.0]


def test_pipe_file_with_backslash_escapes(tmp_path):
    p = write(tmp_path, "likes.psv", "user|item\nann\\|bob|song\\|1\ncid|song2\n")
    data = read_interactions(p, rating=None, escapechar="\\")
    assert set(data.to_frame()["user"]) == {"ann|bob", "cid"}
    assert "song|1" in set(data.to_frame()["item"])


def test_custom_quotechar(tmp_path):
    p = write(tmp_path, "likes.psv", "user|item\n'ann|bob'|x\n")
    data = read_interactions(p, rating=None, quotechar="'")
    assert data.users.ids.tolist() == ["ann|bob"]


def test_id_type_str_keeps_leading_zeros(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n007,0123,4\n7,123,3\n")
    data = read_interactions(p, id_type="str")
    assert sorted(data.users.ids.tolist()) == ["007", "7"]


def test_iso_timestamps(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating,when\n1,2,3,1970-01-02T00:00:00Z\n")
    assert read_interactions(p, timestamp="when").timestamps.tolist() == [86400]


def test_duplicates_policy_mean(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,2,5\n")
    assert read_interactions(p, duplicates="mean").values.tolist() == [4.0]


def test_latin1_encoding(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\nJosé,1,3\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"r\.csv, line 2, byte offset 20 .*cannot decode as utf-8.*encoding="):
        read_interactions(p)
    assert read_interactions(p, encoding="latin-1").users.ids.tolist() == ["José"]


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"u": ["a", "b"], "i": [1, 2], "r": [1.5, 2.0],
                       "t": pd.to_datetime(["1970-01-01 00:00:10", "1970-01-01 00:00:20"])})
    p = tmp_path / "r.parquet"
    df.to_parquet(p)
    data = read_interactions(p, user="u", item="i", rating="r", timestamp="t")
    assert data.to_frame().values.tolist() == [["a", 1, 1.5, 10], ["b", 2, 2.0, 20]]


def test_parquet_bad_value_names_row(tmp_path):
    pytest.importorskip("pyarrow")
    p = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1.0, np.nan]}).to_parquet(p)
    with pytest.raises(DataError, match=r"r\.parquet, row 2 \(row group 1 of 1\): column 'rating' is missing or NaN"):
        read_interactions(p)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    p = tmp_path / "r.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"latentrec\[parquet\]"):
        read_interactions(p)


# ---------------------------------------------------------------------------- bad input, one test each
def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope\.csv"):
        read_interactions(tmp_path / "nope.csv")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_interactions(tmp_path)


def test_wrong_delimiter(tmp_path):
    p = write(tmp_path, "r.tsv", "user,item,rating\n1,2,3\n")
    with pytest.raises(DataError, match=r"r\.tsv: only one column found .*is the separator ','\?"):
        read_interactions(p)


def test_missing_column_lists_columns_found(tmp_path):
    p = write(tmp_path, "r.csv", "user,item\n1,2\n")
    with pytest.raises(DataError, match=r"r\.csv: rating column 'rating' not found; the columns found are "
                                        r"\['user', 'item'\]"):
        read_interactions(p)


def test_misnamed_columns(tmp_path):
    p = write(tmp_path, "r.csv", "userId,movieId,rating\n1,2,3\n")
    with pytest.raises(DataError, match=r"user column 'user' not found; the columns found are \['userId'"):
        read_interactions(p)


def test_non_numeric_rating_names_line(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n\n1,3,abc\n")  # the blank line still counts
    with pytest.raises(DataError, match=r"r\.csv, line 4: column 'rating' is 'abc'; expected a number"):
        read_interactions(p)


def test_nan_rating(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,nan\n")
    with pytest.raises(DataError, match=r"line 3: column 'rating' is missing or NaN"):
        read_interactions(p)


def test_empty_rating_field(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,\n")
    with pytest.raises(DataError, match=r"line 2: column 'rating' is missing"):
        read_interactions(p)


def test_inf_rating(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,4\n1,4,inf\n")
    with pytest.raises(DataError, match=r"line 4: column 'rating' is inf; expected a finite number"):
        read_interactions(p)


def test_rating_outside_declared_scale(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,7\n1,4,0\n")
    with pytest.raises(DataError, match=r"line 3: column 'rating' is 7, outside the declared rating scale "
                                        r"\[1, 5\] \(2 such rows\)"):
        read_interactions(p, rating_scale=(1, 5))


def test_empty_file(tmp_path):
    p = write(tmp_path, "r.csv", "")
    with pytest.raises(DataError, match=r"r\.csv is empty"):
        read_interactions(p)


def test_blank_lines_only(tmp_path):
    p = write(tmp_path, "r.csv", "\n\n")
    with pytest.raises(DataError, match="no header and no rows"):
        read_interactions(p)


def test_header_only_file(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n")
    with pytest.raises(DataError, match=r"r\.csv has a header \(columns \['user', 'item', 'rating'\]\) but no data"):
        read_interactions(p)


def test_duplicated_pairs_name_both_lines(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,4\n1,2,5\n")
    with pytest.raises(DataError, match=r"\(user 1, item 2\) appears on line 2 and line 4.*duplicates="):
        read_interactions(p)


def test_mixed_id_types(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\nabc,3,4\n")
    with pytest.raises(DataError, match=r"user ids \(column 'user'\) are of mixed types: integer '1' at line 2, text 'abc' at line 3"):
        read_interactions(p)


def test_id_type_int_rejects_text(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\nabc,2,3\n")
    with pytest.raises(DataError, match=r"line 2: user id \(column 'user'\) is 'abc'; expected an integer"):
        read_interactions(p, id_type="int")


def test_missing_id(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n,3,4\n")
    with pytest.raises(DataError, match=r"line 3: user id \(column 'user'\) is missing"):
        read_interactions(p)


def test_fractional_id(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2.5,3\n")
    with pytest.raises(DataError, match=r"line 2: item id \(column 'item'\) is 2.5; expected an integer or a string"):
        read_interactions(p)


def test_ragged_line_is_an_error_not_skipped(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,4,5\n")
    with pytest.raises(DataError, match=r"r\.csv: Expected 3 fields in line 3, saw 4"):
        read_interactions(p)


def test_short_line_is_reported(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3\n")
    with pytest.raises(DataError, match=r"line 3: column 'rating' is missing"):
        read_interactions(p)


def test_bad_timestamp(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating,ts\n1,2,3,100\n1,3,4,yesterday\n")
    with pytest.raises(DataError, match=r"line 3: timestamp \(column 'ts'\) is 'yesterday'; expected a number"):
        read_interactions(p, timestamp="ts")


def test_negative_implicit_weight(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,-1\n")
    with pytest.raises(DataError, match=r"line 3: weight -1 is negative"):
        read_interactions(p, implicit=True)


def test_bad_policy_and_id_type(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n")
    with pytest.raises(DataError, match="duplicates must be one of"):
        read_interactions(p, duplicates="keep")
    with pytest.raises(DataError, match="id_type must be"):
        read_interactions(p, id_type="float")


def test_unguessable_separator(tmp_path):
    p = write(tmp_path, "r.dat", "useritemrating\n")
    with pytest.raises(DataError, match="pass sep="):
        read_interactions(p)


# ---------------------------------------------------------------------------- round trip
_rows = st.lists(st.tuples(st.integers(0, 40), st.integers(-5, 60), st.sampled_from([0.5, 1.0, 2.5, 3.0, 4.5, 5.0]),
                           st.integers(0, 2**40)), min_size=1, max_size=60, unique_by=lambda r: (r[0], r[1]))


@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows, ext=st.sampled_from([".csv", ".tsv", ".psv"]), string_ids=st.booleans())
def test_round_trip(tmp_path, rows, ext, string_ids):
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "ts"])
    if string_ids:
        df["user"] = "u" + df["user"].astype(str)
    path = tmp_path / f"r{ext}"
    df.to_csv(path, sep={".csv": ",", ".tsv": "\t", ".psv": "|"}[ext], index=False)
    data = read_interactions(path, timestamp="ts", rating_scale=(0.5, 5))
    back = data.to_frame()
    assert len(back) == len(df)  # nothing dropped
    key = ["user", "item"]
    merged = df.merge(back, on=key, suffixes=("", "_read"), validate="one_to_one")
    assert len(merged) == len(df)
    np.testing.assert_array_equal(merged["rating"].to_numpy(np.float32), merged["rating_read"].to_numpy())
    np.testing.assert_array_equal(merged["ts"].to_numpy(), merged["timestamp"].to_numpy())


def test_id_type_str_by_position_without_header(tmp_path):
    p = write(tmp_path, "r.tsv", "007\t0123\t4\n")
    data = read_interactions(p, user=0, item=1, rating=2, header=False, id_type="str")
    assert data.users.ids.tolist() == ["007"] and data.items.ids.tolist() == ["0123"]
