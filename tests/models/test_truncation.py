"""No look-ahead: features at t from the full history equal features at t from history cut at t.

Cutting at t keeps daily bars with session <= t and intraday bars ending at or before the close
of t.  A deliberately leaking feature (tomorrow's return, or a volume normalised over all bars)
must make the same check fail: the test can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import features
from models.config import FeatureSpec
from models.features import build_windows, daily_feature_table, intraday_feature_table
from models.forecaster import decision_time
from tests.models.conftest import Market

SPEC = FeatureSpec(daily_window=10, zscore_window=10, vol_window=10, intraday_sessions=2)


def _cut(m: Market, t: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        m.daily.filter(pl.col("session") <= t),
        m.intraday.filter(pl.col("ts") <= decision_time(t).astimezone(UTC)),
    )


def lookahead_mismatch(m: Market, t: date) -> list[str]:
    """Names of the inputs of session t that change when the future is removed."""
    full = build_windows(m.daily, m.intraday, SPEC, sessions=[t], strict=True)
    d, i = _cut(m, t)
    cut = build_windows(d, i, SPEC, sessions=[t], strict=True)
    return [
        name
        for name in ("x_daily", "x_intra", "m_intra", "has_intra")
        if not np.array_equal(getattr(full, name), getattr(cut, name))
    ]


def _sessions(m: Market) -> list[date]:
    # decision sessions with a full window, excluding the last (nothing to leak from there)
    s = m.daily.get_column("session").to_list()
    return s[SPEC.warmup : -1]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_features_at_t_do_not_depend_on_bars_after_t(market: Market, data: st.DataObject) -> None:
    t = data.draw(st.sampled_from(_sessions(market)), label="decision session")
    assert lookahead_mismatch(market, t) == []


def _leaky_daily(daily: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    # LEAK on purpose: "ret" becomes tomorrow's return (0 on the last row, so no NaN gives it away).
    return daily_feature_table(daily, spec).with_columns(pl.col("ret").shift(-1).fill_null(0.0))


def _leaky_intraday(intraday: pl.DataFrame, minutes: int) -> pl.DataFrame:
    # LEAK on purpose: volume demeaned over ALL bars (future sessions included).
    t = intraday_feature_table(intraday, minutes)
    lv = (intraday.sort("ts").get_column("volume") + 1.0).log()
    return t.with_columns(pl.col("log_volume") + lv.mean())


_summaries = features.session_summaries


def _leaky_summaries(*args: np.ndarray) -> np.ndarray:
    # LEAK on purpose: each session's summary is the NEXT session's (its last-30-minute return).
    return np.roll(_summaries(*args), -1, axis=0)


@pytest.mark.parametrize(
    ("attr", "leaky", "where"),
    [
        ("daily_feature_table", _leaky_daily, "x_daily"),
        ("intraday_feature_table", _leaky_intraday, "x_intra"),
        ("session_summaries", _leaky_summaries, "x_daily"),
    ],
    ids=["daily-next-return", "intraday-global-volume", "session-summary-of-tomorrow"],
)
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_truncation_check_catches_a_deliberate_leak(
    market: Market,
    data: st.DataObject,
    attr: str,
    leaky: Callable[..., pl.DataFrame],
    where: str,
) -> None:
    with_bars = set(market.intraday.get_column("session").to_list())
    needs_bars = where == "x_intra" or attr == "session_summaries"
    pool = [s for s in _sessions(market) if not needs_bars or s in with_bars]
    t = data.draw(st.sampled_from(pool[:-1]), label="decision session")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(features, attr, leaky)
        assert where in lookahead_mismatch(market, t)
