"""The one-pass splitter of plain vendor CSVs (``feeds.csv_rows.split_rows``) against Python's
``csv`` module (``csv_rows``) on random files: blank lines, lines of empty cells, repeated
headers, wrong field counts, spaces and tabs around cells, either line ending."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.csv_rows import csv_rows, plain, rows, split_rows
from feeds.parse import _choose_profile, _decode
from feeds.profiles import get_profile
from tests.feeds.helpers import REAL, real_data

HEADER = ["day", "open", "high", "low", "close", "volume"]
FIELDS = {"datetime": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}

pad = st.sampled_from(["", " ", "  ", "\t", " \t"])
cell = st.sampled_from(["2024-01-02 09:31:00", "3501.2", "1e3", "-4", "", "abc", "nan"])


@st.composite
def line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["data", "data", "data", "blank", "empties", "header", "ragged"]))
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t"]))
    if kind == "empties":
        return ",".join(draw(pad) for _ in range(draw(st.integers(1, 7))))
    if kind == "header":
        return ",".join(draw(pad) + h + draw(pad) for h in HEADER)
    n = len(HEADER) if kind == "data" else draw(st.sampled_from([1, 5, 7, 9]))
    return ",".join(draw(pad) + draw(cell) + draw(pad) for _ in range(n))


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(line(), max_size=25),
    crlf=st.booleans(),
    trailing=st.booleans(),
    repeated_header=st.booleans(),
)
def test_split_rows_reads_a_plain_file_as_the_csv_module_does(
    body: list[str], crlf: bool, trailing: bool, repeated_header: bool
) -> None:
    prof = dataclasses.replace(get_profile("sina_index_1m"), repeated_header=repeated_header)
    end = "\r\n" if crlf else "\n"
    text = end.join([",".join(HEADER), *body]) + (end if trailing else "")
    lines = text.splitlines()
    assert plain(text)
    slow, slow_dropped = csv_rows(text, lines, HEADER, FIELDS, prof)
    fast, fast_dropped = split_rows(lines, HEADER, FIELDS, prof)
    assert fast.equals(slow), (fast, slow)
    assert fast_dropped == slow_dropped


def test_a_quoted_field_is_read_by_the_csv_module() -> None:
    prof = get_profile("sina_index_1m")
    text = ",".join(HEADER) + '\n"2024-01-02 09:31:00",1,2,0.5,"1,5",7\n'
    assert not plain(text)
    got, dropped = rows(text, text.splitlines(), HEADER, FIELDS, prof)
    assert got["close"].to_list() == ["1,5"] and got["_reason"].to_list() == [None]
    assert dropped == []
    assert not plain("a,b\r1,2\r")  # old Mac line ends: csv and splitlines count lines apart


@real_data
@pytest.mark.real_data
@pytest.mark.parametrize(
    "name", sorted(p.name for p in REAL.glob("*.csv")) if REAL.exists() else []
)
def test_every_real_vendor_file_splits_as_the_csv_module_reads_it(name: str) -> None:
    path = REAL / name
    text, _ = _decode(path, path.read_bytes())
    lines = text.splitlines()
    header = [h.strip() for h in next(csv.reader(io.StringIO(text), skipinitialspace=True))]
    prof = _choose_profile(path, header, None, "csv")
    index = {h: i for i, h in enumerate(header)}
    fields = {canon: index[col] for canon, col in prof.columns.items()}
    assert plain(text)
    slow, slow_dropped = csv_rows(text, lines, header, fields, prof)
    fast, fast_dropped = split_rows(lines, header, fields, prof)
    assert fast.equals(slow)
    assert fast_dropped == slow_dropped
