"""The series of a batch found along its runs (``feeds.series``) against plain polars, and the
duplicate-key check built on them against a struct of the key columns, over random batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.series import distinct, factorize
from feeds.validate import _repeated, _strictly_increasing

_T0 = datetime(2023, 8, 1, 1, 31, tzinfo=UTC)
_KEY = ["symbol", "frequency", "source", "ts"]

rows = st.lists(
    st.tuples(
        st.sampled_from(["IF.CFE", "IH.CFE", None]),
        st.sampled_from(["1m", "5m"]),
        st.sampled_from(["sina", "wind"]),
        st.integers(0, 30),
    ),
    max_size=60,
)


def _frame(rs: list[tuple[str | None, str, str, int]], *, blocks: bool) -> pl.DataFrame:
    if blocks:  # each series in one block, as vendor files hold them
        rs = sorted(rs, key=lambda r: (str(r[0]), r[1], r[2]))
    return pl.DataFrame(
        {
            "symbol": [r[0] for r in rs],
            "frequency": [r[1] for r in rs],
            "source": [r[2] for r in rs],
            "ts": [_T0 + timedelta(minutes=r[3]) for r in rs],
        },
        schema={"symbol": pl.String, "frequency": pl.String, "source": pl.String, "ts": None},
    )


@settings(max_examples=200, deadline=None)
@given(rs=rows, blocks=st.booleans())
def test_factorize_codes_rebuild_the_columns(
    rs: list[tuple[str | None, str, str, int]], blocks: bool
) -> None:
    frame = _frame(rs, blocks=blocks)
    cols = ["symbol", "frequency", "source"]
    f = factorize(frame, cols)
    assert f.values.equals(frame.select(cols).unique(maintain_order=True))
    assert distinct(frame, cols).equals(f.values)
    assert f.values[f.codes.to_list()].equals(frame.select(cols))
    codes = f.codes.to_list()
    runs = sum(1 for i, c in enumerate(codes) if i == 0 or c != codes[i - 1])
    assert f.blocks == (runs == f.values.height)


@settings(max_examples=200, deadline=None)
@given(rs=rows, blocks=st.booleans())
def test_repeated_keys_are_the_struct_of_the_key_columns(
    rs: list[tuple[str | None, str, str, int]], blocks: bool
) -> None:
    frame = _frame([r for r in rs if r[0] is not None], blocks=blocks)
    f = factorize(frame, ["symbol", "frequency", "source"])
    oracle = frame.select(pl.struct(_KEY).is_duplicated()).to_series()
    if frame.height:
        assert _repeated(frame, f).to_list() == oracle.to_list()
    if _strictly_increasing(frame, f):  # no key repeats, and each series in one block
        assert not oracle.any()
        assert f.blocks
