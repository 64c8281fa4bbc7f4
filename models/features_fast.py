"""One model input window in numpy: the serving twin of ``models.features``.

``models.features.build_windows`` builds every window of a history through polars (about 5-20 ms
for one window); the API needs one window per request in well under a millisecond.  This module
computes the same numbers for the last session only, from the same feature names, session grid
and session summaries as the reference, and resamples with ``feeds.resample.resample_arrays``
(the bucket rule of ``feeds.resample.resample_intraday``).  ``agrees_with_reference`` compares it
with ``models.features`` on a synthetic canary each time a model is loaded, and the server falls
back to the reference path if they ever differ (tests/api/test_features.py checks it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import polars as pl

from feeds.calendar import trading_days
from feeds.resample import resample_arrays, resample_intraday
from feeds.session import local_date, local_minute
from feeds.synthetic import synthetic_market
from models.config import FeatureSpec
from models.features import (
    DAILY_FEATURES,
    FLAT_CLOSE_POS,
    GRID,
    INTRADAY_FEATURES,
    SESSION_FEATURES,
    ZSCORE_EPS,
    Windows,
    build_windows,
    session_summaries,
    slots_per_session,
)


@dataclass(frozen=True)
class DailyArrays:
    """Daily bars of one request, ascending consecutive sessions (``quant.api.bars`` checks)."""

    sessions: list[date]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    amount: np.ndarray  # CNY; NaN when the caller sends none (then the model must not read it)
    amount_estimated: bool  # True when no amount was sent (nothing is estimated any more)


@dataclass(frozen=True)
class MinuteArrays:
    """1-minute bars of one request on the cash-market grid, ascending."""

    ts: np.ndarray  # int64 seconds since the epoch (UTC), bar END, ascending
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def sessions(self) -> np.ndarray:
        """Exchange-local trading date of each bar as datetime64[D]."""
        return local_date(self.ts)


@dataclass(frozen=True)
class Sample:
    """Unnormalised inputs of one decision session (float32)."""

    x_daily: np.ndarray  # [L, len(TOKEN_FEATURES)]
    x_intra: np.ndarray  # [K*B, len(INTRADAY_FEATURES)]
    m_intra: np.ndarray  # [K*B] bool

    @property
    def has_intra(self) -> bool:
        return bool(self.m_intra.any())

    def as_windows(self) -> Windows:
        """This sample as a batch of one (for ``models.normalise.apply_norm`` and the model)."""
        return Windows(
            sessions=np.array(["NaT"], dtype="datetime64[D]"),
            x_daily=self.x_daily[None],
            x_intra=self.x_intra[None],
            m_intra=self.m_intra[None],
            has_intra=np.array([self.has_intra]),
        )


@lru_cache(maxsize=64)
def _window_index(w: int, rows: int) -> np.ndarray:
    """[rows, w] indices of the trailing windows of length ``w`` in an array of rows + w - 1."""
    return np.arange(rows)[:, None] + np.arange(w)[None, :]


def _rolling(x: np.ndarray, w: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 1) of the windows ending at the last ``rows`` entries
    of the last axis (leading axes: samples of a batch)."""
    a = x[..., -(rows + w - 1) :][..., _window_index(w, rows)]
    mean = a.sum(axis=-1) / w
    dev = a - mean[..., None]
    return mean, np.sqrt((dev * dev).sum(axis=-1) / (w - 1))


def _zscore(x: np.ndarray, w: int, rows: int) -> np.ndarray:
    """Rolling z-score (window ``w``, ddof 1) of the last ``rows`` entries of ``x``."""
    mean, std = _rolling(x, w, rows)
    return (x[..., -rows:] - mean) / (std + ZSCORE_EPS)


def _daily_tokens(
    c: np.ndarray, h: np.ndarray, lo: np.ndarray, v: np.ndarray, a: np.ndarray, spec: FeatureSpec
) -> np.ndarray:
    """[..., L, 6] daily tokens from the last ``spec.warmup`` bars on the last axis."""
    L = spec.daily_window
    ret = np.log(c[..., 1:] / c[..., :-1])
    hl = h[..., -L:] - lo[..., -L:]
    pos = (c[..., -L:] - lo[..., -L:]) / np.where(hl > 0, hl, 1.0)
    out = np.empty((*c.shape[:-1], L, len(DAILY_FEATURES)), dtype=np.float64)
    cols = {
        "ret": ret[..., -L:],
        "range": np.log(h[..., -L:] / lo[..., -L:]),
        "close_pos": np.where(hl > 0, pos, FLAT_CLOSE_POS),
        "volume_z": _zscore(np.log1p(v), spec.zscore_window, L),
        "amount_z": _zscore(np.log1p(a), spec.zscore_window, L)
        if spec.use_amount
        else np.zeros((*c.shape[:-1], L)),
        "realised_vol": _rolling(ret, spec.vol_window, L)[1],
    }
    for j, f in enumerate(DAILY_FEATURES):
        out[..., j] = cols[f]
    return out.astype(np.float32)


def daily_window(d: DailyArrays, spec: FeatureSpec) -> np.ndarray:
    """[L, 6] daily tokens of the last session (caller checked ``len >= spec.warmup``)."""
    w = spec.warmup
    return _daily_tokens(d.close[-w:], d.high[-w:], d.low[-w:], d.volume[-w:], d.amount[-w:], spec)


def _resample(m: MinuteArrays, minutes: int) -> MinuteArrays:
    """End-stamped 1-minute bars to ``minutes`` bars (``feeds.resample.resample_arrays``)."""
    ts, values = resample_arrays(m.ts, minutes, m.open, m.high, m.low, m.close, m.volume)
    return MinuteArrays(ts, *values)


def intraday_window(
    m: MinuteArrays | None, d: DailyArrays, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """[K*B, 5] intraday tokens and their mask over the last K daily sessions."""
    x, mask, _ = _grid(m, d, spec.intraday_sessions, spec.intraday_minutes)
    return x, mask


def session_columns(
    m: MinuteArrays | None, d: DailyArrays, xd: np.ndarray, spec: FeatureSpec
) -> np.ndarray:
    """[L, len(SESSION_FEATURES)] session summaries of the L daily tokens (``xd``: their
    DAILY_FEATURES), through ``models.features.session_summaries`` like the reference."""
    L, B = spec.daily_window, slots_per_session(spec.intraday_minutes)
    x, mask, close = _grid(m, d, L, spec.intraday_minutes)
    n = min(L, len(d.sessions))
    out = np.zeros((L, len(SESSION_FEATURES)))
    ret, lv = INTRADAY_FEATURES.index("ret"), INTRADAY_FEATURES.index("log_volume")
    out[L - n :] = session_summaries(
        x[:, ret].reshape(L, B)[L - n :],
        x[:, lv].reshape(L, B)[L - n :],
        mask.reshape(L, B)[L - n :],
        close[L - n :],
        d.close[-n:],
        xd[L - n :, DAILY_FEATURES.index("realised_vol")].astype(np.float64),
    )
    return out


def _grid(
    m: MinuteArrays | None, d: DailyArrays, K: int, minutes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens [K*B, 5], mask [K*B] and the 15:00 bar's close [K] of the last K sessions."""
    B = slots_per_session(minutes)
    x = np.zeros((K * B, len(INTRADAY_FEATURES)), dtype=np.float32)
    mask = np.zeros(K * B, dtype=bool)
    close_at_close = np.full(K, np.nan)
    if m is None or len(m) == 0:
        return x, mask, close_at_close
    bars = _resample(m, minutes)
    window = np.array(d.sessions[-K:], dtype="datetime64[D]")
    row = np.searchsorted(window, bars.sessions)
    keep = (row < len(window)) & (window[np.minimum(row, len(window) - 1)] == bars.sessions)
    if not keep.any():
        return x, mask, close_at_close
    row = row[keep] + (K - len(window))  # oldest session first; short histories pad in front
    ts, o, h, lo, c, v = (
        a[keep] for a in (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    )
    slot = GRID.slot(local_minute(ts), minutes)
    half = GRID.morning_minutes // minutes
    first = np.r_[True, row[1:] != row[:-1]]
    prev = np.where(first, o, np.r_[o[:1], c[:-1]])
    lv = np.log(v + 1.0)
    sums = np.bincount(row, weights=lv, minlength=K)
    counts = np.bincount(row, minlength=K)
    cols = {
        "ret": np.log(c / prev),
        "range": np.log(h / lo),
        "log_volume": lv - (sums / np.maximum(counts, 1))[row],
        "session_pos": slot / B,
        "afternoon": (slot >= half).astype(np.float64),
    }
    pos = row * B + slot
    x[pos] = np.stack([cols[f] for f in INTRADAY_FEATURES], axis=1)
    mask[pos] = True
    at_close = slot == B - 1
    close_at_close[row[at_close]] = c[at_close]
    return x, mask, close_at_close


def sample(d: DailyArrays, m: MinuteArrays | None, spec: FeatureSpec) -> Sample:
    """Inputs of the last daily session (``check_daily`` and ``check_minutes`` ran first)."""
    xi, mi = intraday_window(m, d, spec)
    xd = daily_window(d, spec)
    xs = session_columns(m, d, xd, spec)
    return Sample(np.concatenate([xd, xs], axis=1).astype(np.float32), xi, mi)


def daily_only_batch(ds: list[DailyArrays], spec: FeatureSpec) -> np.ndarray:
    """[len(ds), L, len(TOKEN_FEATURES)] ``sample(d, None, spec).x_daily`` of every ``d`` at once.

    One vectorised pass over the batch's last ``spec.warmup`` bars (each ``d`` has at least
    that many: ``quant.api.bars.check_daily``); ``batch_agrees`` checks it against ``sample``.
    """
    w, L = spec.warmup, spec.daily_window
    cols = np.stack(
        [
            np.stack([d.close[-w:], d.high[-w:], d.low[-w:], d.volume[-w:], d.amount[-w:]])
            for d in ds
        ]
    )  # [B, 5, w]
    xd = _daily_tokens(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], spec)
    B, S = len(ds), slots_per_session(spec.intraday_minutes)
    empty = np.zeros((B * L, S))  # no intraday bars: the grid of ``_grid`` with nothing on it
    xs = session_summaries(
        empty,
        empty,
        np.zeros((B * L, S), dtype=bool),
        np.full(B * L, np.nan),
        cols[:, 0, -L:].reshape(B * L),
        xd[..., DAILY_FEATURES.index("realised_vol")].astype(np.float64).reshape(B * L),
    ).reshape(B, L, len(SESSION_FEATURES))
    return np.concatenate([xd, xs], axis=-1).astype(np.float32)


def batch_agrees(spec: FeatureSpec) -> bool:
    """True when ``daily_only_batch`` equals ``sample`` bar for bar on canary histories."""
    d, _ = canary(spec)
    n = len(d.sessions)
    ds = [_tail(d, n - k) for k in range(3) if n - k >= spec.warmup]
    try:
        got = daily_only_batch(ds, spec)
        want = np.stack([sample(x, None, spec).x_daily for x in ds])
    except Exception:  # any failure of the batch path means: do not use it
        return False
    return bool(np.array_equal(got, want))


def _tail(d: DailyArrays, n: int) -> DailyArrays:
    """The first ``n`` bars of ``d`` (a shorter history ending earlier)."""
    return DailyArrays(
        d.sessions[:n], d.open[:n], d.high[:n], d.low[:n], d.close[:n], d.volume[:n],
        d.amount[:n], d.amount_estimated,
    )  # fmt: skip


def reference_sample(d: DailyArrays, m: MinuteArrays | None, spec: FeatureSpec) -> Sample:
    """The same inputs through ``models.features`` (polars; slow, the definition)."""
    intra = None
    if m is not None and len(m):
        intra = minute_frame(m)
        if spec.intraday_minutes != 1:
            intra = resample_intraday(intra, spec.intraday_minutes)
    w = build_windows(daily_frame(d), intra, spec, sessions=[d.sessions[-1]], strict=True)
    return Sample(w.x_daily[0], w.x_intra[0], w.m_intra[0])


def daily_frame(d: DailyArrays) -> pl.DataFrame:
    """The daily bars as the frame ``models.features`` reads (the reference path)."""
    return pl.DataFrame(
        {
            "session": pl.Series(d.sessions, dtype=pl.Date),
            "open": d.open,
            "high": d.high,
            "low": d.low,
            "close": d.close,
            "volume": d.volume,
            "amount": d.amount,
        }
    )


def minute_frame(m: MinuteArrays) -> pl.DataFrame:
    """The 1-minute bars as the frame ``feeds.resample`` and ``models.features`` read."""
    ts = pl.Series("ts", m.ts * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        {
            "session": pl.Series(m.sessions, dtype=pl.Date),
            "ts": ts,
            "open": m.open,
            "high": m.high,
            "low": m.low,
            "close": m.close,
            "volume": m.volume,
            "amount": m.volume * (m.open + m.high + m.low + m.close) / 4.0,
            "open_interest": pl.Series([None] * len(m), dtype=pl.Float64),
        }
    )


_OHLCVA = ("open", "high", "low", "close", "volume", "amount")


def canary(spec: FeatureSpec) -> tuple[DailyArrays, MinuteArrays]:
    """A seeded synthetic request (SYNTHETIC market) long enough for ``spec``."""
    end = date(2024, 6, 28)
    days = trading_days(date(2020, 1, 1), end)
    n = spec.warmup + 5
    mk = synthetic_market(days[-n], end, seed=11, minute_sessions=spec.intraday_sessions + 1)
    dd, mm = mk.daily, mk.minute
    col = {c: dd[c].to_numpy().astype(np.float64) for c in _OHLCVA}
    d = DailyArrays(
        sessions=dd["session"].to_list(),
        open=col["open"],
        high=col["high"],
        low=col["low"],
        close=col["close"],
        volume=col["volume"],
        amount=col["amount"],
        amount_estimated=False,
    )
    ts = mm["ts"].dt.epoch("s").to_numpy().astype(np.int64)
    m = MinuteArrays(
        ts,
        *(mm[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close", "volume")),
    )
    return d, m


def agrees_with_reference(spec: FeatureSpec, atol: float = 1e-4) -> bool:
    """True when this module and ``models.features`` give the same canary window."""
    d, m = canary(spec)
    try:
        fast, ref = sample(d, m, spec), reference_sample(d, m, spec)
    except Exception:  # any failure of the twin means: do not use it
        return False
    return bool(
        np.array_equal(fast.m_intra, ref.m_intra)
        and np.allclose(fast.x_daily, ref.x_daily, atol=atol, rtol=1e-4)
        and np.allclose(fast.x_intra, ref.x_intra, atol=atol, rtol=1e-4)
    )
