"""The bar rules, written once, and their two evaluators.

``RULES`` is the one table of what a single bar must satisfy: finite, positive prices and
non-negative quantities, OHLC consistency, the calendar's horizon and trading days, and the
session grid of ``feeds.session``.  Each rule names the field it blames, the quarantine reason
(``{value}`` is the offending value) and the answer text of the API, and states its test with
operators and the few ``Ops`` below, so one definition runs on both backends:

* ``polars_rules`` -> ``feeds.validate``: every row of a vendor file, a reason per rejected row
  (the first failing rule in table order), for the quarantine.
* ``first_failure`` -> ``quant.api.bars``: numpy arrays of one request, the first failing rule
  and bar, for the API's 422 that names the bar and the field.

Rules about a whole series (order, duplicates, consecutive sessions, closed sessions) are not
per-bar rules: ingest keeps the first of duplicate keys, the API refuses unordered or gapped
requests (``quant.api.bars``).  The API's schema already refuses non-finite, non-positive and
negative numbers (``quant.api.schemas``), so it evaluates the ``ohlc``, ``calendar`` and
``grid`` groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, reduce
from typing import Any, Literal

import numpy as np
import polars as pl

from feeds.calendar import EXCHANGE_TZ, horizon, trading_days_array
from feeds.schema import PRICE_FIELDS
from feeds.session import SessionGrid, grid_exprs, in_session, local_minute

Group = Literal["value", "ohlc", "calendar", "grid"]
Cols = Mapping[str, Any]  # column name -> polars expression or numpy array


@dataclass(frozen=True)
class Ops:
    """The non-operator functions a rule test may call, per backend."""

    maximum: Callable[..., Any]
    minimum: Callable[..., Any]
    nonfinite: Callable[[Any], Any]
    not_in: Callable[[Any, Any], Any]  # (values, sorted allowed values)


def _np_not_in(x: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(allowed, x), len(allowed) - 1)
    return np.asarray(allowed[pos] != x)


POLARS = Ops(
    maximum=pl.max_horizontal,
    minimum=pl.min_horizontal,
    nonfinite=lambda x: ~x.is_finite(),
    not_in=lambda x, allowed: ~x.is_in(allowed.implode()),
)
NUMPY = Ops(
    maximum=lambda *xs: reduce(np.maximum, xs),
    minimum=lambda *xs: reduce(np.minimum, xs),
    nonfinite=lambda x: ~np.isfinite(x),
    not_in=_np_not_in,
)


@dataclass(frozen=True)
class Context:
    """What the calendar and grid rules read besides the bar's columns."""

    minutes: int  # bar length (0: daily bars, no grid rule)
    bounds: tuple[Any, Any, Any, Any]  # grid (am_open, am_close, pm_open, pm_close)
    trading_days: Any  # sorted sessions: polars Series or datetime64[D] array
    last: Any  # the calendar horizon (date, or datetime64[D] for numpy)


Test = Callable[[Ops, Cols, Context], Any]  # True where a bar breaks the rule


@dataclass(frozen=True)
class BarRule:
    name: str
    group: Group
    field: str  # the field the reason blames
    needs: tuple[str, ...]  # columns the test reads (a rule without them is skipped)
    bad: Test
    reason: str  # quarantine reason; {value} is the bar's ``value`` column
    text: str  # the API's answer (no value: the bar is named by index and label)
    value: str = ""  # the column shown in the reason (default: ``field``)


def _nonfinite(c: str) -> Test:
    return lambda o, x, _: o.nonfinite(x[c])


def _nonpositive(c: str) -> Test:
    return lambda o, x, _: x[c] <= 0


def _negative(c: str) -> Test:
    return lambda o, x, _: x[c] < 0


def _value_rules() -> list[BarRule]:
    quantities = ("volume", "amount", "open_interest")
    finite = [
        BarRule(
            f"finite_{c}", "value", c, (c,), _nonfinite(c), "non-finite value", "non-finite value"
        )
        for c in (*PRICE_FIELDS, *quantities)
    ]
    positive = [
        BarRule(
            f"positive_{c}",
            "value",
            c,
            (c,),
            _nonpositive(c),
            "non-positive price {value}",
            "non-positive price",
        )
        for c in PRICE_FIELDS
    ]
    nonnegative = [
        BarRule(
            f"nonnegative_{c}",
            "value",
            c,
            (c,),
            _negative(c),
            f"negative {c} {{value}}",
            f"negative {c}",
        )
        for c in quantities
    ]
    return [*finite, *positive, *nonnegative]


RULES: tuple[BarRule, ...] = (
    *_value_rules(),
    BarRule(
        "ohlc_high",
        "ohlc",
        "high",
        PRICE_FIELDS,
        lambda o, x, _: x["high"] < o.maximum(x["open"], x["close"], x["low"]),
        "high {value} below max(open, close, low)",
        "high below max(open, close, low)",
    ),
    BarRule(
        "ohlc_low",
        "ohlc",
        "low",
        PRICE_FIELDS,
        lambda o, x, _: x["low"] > o.minimum(x["open"], x["close"]),
        "low {value} above min(open, close)",
        "low above min(open, close)",
    ),
    BarRule(
        "horizon",
        "calendar",
        "session",
        ("session",),
        lambda o, x, ctx: x["session"] > ctx.last,
        "{value} is past the calendar horizon {horizon}",
        "past the calendar horizon {horizon}",
    ),
    BarRule(
        "trading_day",
        "calendar",
        "session",
        ("session",),
        lambda o, x, ctx: o.not_in(x["session"], ctx.trading_days),
        "{value} is not an XSHG trading day",
        "not an XSHG trading day",
    ),
    BarRule(
        "session_grid",
        "grid",
        "datetime",
        ("minute", "second"),
        lambda o, x, ctx: (
            ~(
                in_session(x["minute"], ctx.minutes, *ctx.bounds)
                & (x["minute"] % ctx.minutes == 0)
                & (x["second"] == 0)
            )
        ),
        "bar end {value} outside the trading session",
        "outside the XSHG session ({minutes}-minute bar ends {span} Asia/Shanghai)",
        value="local_time",
    ),
)


def _selected(
    groups: Iterable[Group] | None, have: Iterable[str], minutes: int
) -> tuple[BarRule, ...]:
    # cached on the callers' tuples: two frozensets per call cost more than an OHLC test
    return _select(None if groups is None else tuple(groups), tuple(have), minutes > 0)


@lru_cache(maxsize=64)
def _select(
    groups: tuple[Group, ...] | None, cols: tuple[str, ...], intraday: bool
) -> tuple[BarRule, ...]:
    return tuple(
        r
        for r in RULES
        if (groups is None or r.group in groups)
        and set(r.needs) <= set(cols)
        and (r.group != "grid" or intraday)
    )


def polars_rules(
    frequency_minutes: int, columns: Iterable[str], kinds: Iterable[str] | None = None
) -> list[tuple[pl.Expr, str, pl.Expr]]:
    """(bad, field, reason) expressions of every rule, in table order, over parsed rows.

    The rows carry ``session``, ``kind``, ``ts`` (UTC) and the value columns; the grid rule uses
    the grid of each row's kind and session (``kinds``: the kinds the rows hold, when known;
    ``feeds.session.grid_exprs``).
    """
    cols: dict[str, Any] = {c: pl.col(c) for c in columns}
    if "ts" in cols:
        # whole seconds by an integer division of the microseconds: the same value as
        # ``dt.epoch("s")`` for bars after 1970, at a third of its cost
        epoch_s = pl.col("ts").dt.epoch("us") // 1_000_000
        cols["minute"] = local_minute(epoch_s).cast(pl.Int32)
        cols["second"] = epoch_s % 60
        cols["local_time"] = (
            pl.col("ts").dt.convert_time_zone(str(EXCHANGE_TZ)).dt.strftime("%H:%M:%S")
        )
    last = horizon()
    ctx = Context(
        minutes=frequency_minutes,
        bounds=grid_exprs(pl.col("kind"), pl.col("session"), kinds),
        trading_days=pl.Series("d", trading_days_array()),
        last=last,
    )
    out: list[tuple[pl.Expr, str, pl.Expr]] = []
    for r in _selected(None, cols, frequency_minutes):
        tmpl = r.reason.format(value="{}", horizon=last)
        msg = pl.format(tmpl, cols[r.value or r.field]) if "{}" in tmpl else pl.lit(tmpl)
        out.append((r.bad(POLARS, cols, ctx), r.field, msg))
    return out


@dataclass(frozen=True)
class Failure:
    index: int  # position of the first failing bar
    rule: BarRule
    text: str  # the rule's API text


def first_failure(
    cols: Mapping[str, np.ndarray],
    groups: Iterable[Group],
    *,
    grid: SessionGrid | None = None,
    minutes: int = 0,
) -> Failure | None:
    """The first rule (table order) any bar fails, at its first failing bar; None when all pass.

    ``cols`` holds numpy arrays: value columns, ``session`` (datetime64[D]) and, for the grid
    rule, ``ts`` (int64 UTC epoch seconds of the bar end) checked against ``grid``.
    """
    have = cols
    if "ts" in cols:
        have = {**cols, "minute": local_minute(cols["ts"]), "second": cols["ts"] % 60}
    g = grid or _NO_GRID
    rules = _selected(groups, have, minutes)
    # only the calendar and grid rules read the context (the OHLC checks need none)
    reads_context = any(r.group in ("calendar", "grid") for r in rules)
    last, ctx = _numpy_context(minutes, g) if reads_context else (None, _NO_CONTEXT)
    for r in rules:
        bad = np.asarray(r.bad(NUMPY, have, ctx))
        if bad.any():
            span = g.describe(minutes) if minutes else ""
            text = r.text.format(horizon=last, minutes=minutes, span=span)
            return Failure(int(np.argmax(bad)), r, text)
    return None


_NO_GRID = SessionGrid(0, 0, 0, 0)
_NO_CONTEXT = Context(0, (0, 0, 0, 0), None, None)  # for rules that read no context
# (minutes, grid) -> (trading days array, horizon, Context): rebuilt when the installed
# calendar changes (``trading_days_array`` hands out another array, or the horizon moves)
_CONTEXTS: dict[tuple[int, SessionGrid], tuple[np.ndarray, Any, Context]] = {}


def _numpy_context(minutes: int, g: SessionGrid) -> tuple[Any, Context]:
    """The horizon and the numpy ``Context`` of the installed calendar (built once per calendar:
    a request's checks run in microseconds, and building it was a fifth of them)."""
    days, last = trading_days_array(), horizon()
    got = _CONTEXTS.get((minutes, g))
    if got is None or got[0] is not days or got[1] != last:
        ctx = Context(
            minutes=minutes,
            bounds=(g.am_open, g.am_close, g.pm_open, g.pm_close),
            trading_days=days,
            last=np.datetime64(last, "D"),
        )
        got = _CONTEXTS[(minutes, g)] = (days, last, ctx)
    return last, got[2]
