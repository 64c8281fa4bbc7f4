"""Seeded SYNTHETIC market generator (labelled ``source='synthetic'`` wherever it appears).

Daily log returns follow a GARCH(1,1) process (volatility clustering); every session is built from
240 one-minute bars on the real XSHG session grid (09:31-11:30, 13:01-15:00, stamped with their
end time) with U-shaped intraday volume and variance, plus an overnight gap.  Daily bars are the
exact aggregate of the minute bars, so resampling checks hold by construction.  This is not market
data; it serves the demo and fast tests when ``../shared/data/real`` is absent, under its own symbol
``SYN300.SIM`` by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from feeds.calendar import trading_days
from feeds.schema import BAR_SCHEMA, InstrumentKind
from feeds.session import CASH_GRID, LOCAL_OFFSET_S

SYNTHETIC_SOURCE = "synthetic"
SYNTHETIC_SYMBOL = "SYN300.SIM"  # no exchange lists it: synthetic bars never share a real symbol
MINUTES_PER_SESSION = CASH_GRID.trading_minutes

# Minutes after local midnight of each 1-minute bar END stamp on the cash-market grid.
MINUTE_OFFSETS = CASH_GRID.bar_ends(1)
_UTC_OFFSET_MIN = LOCAL_OFFSET_S // 60
_CLOSE_UTC_MIN = CASH_GRID.pm_close - _UTC_OFFSET_MIN


@dataclass(frozen=True)
class SyntheticMarket:
    daily: pl.DataFrame
    minute: pl.DataFrame


def _u_shape(n: int) -> np.ndarray:
    x = np.linspace(-1.0, 1.0, n)
    w = 1.0 + 2.5 * x**2
    return w / w.sum()


def synthetic_market(
    start: date,
    end: date,
    *,
    seed: int,
    symbol: str = SYNTHETIC_SYMBOL,
    kind: InstrumentKind = InstrumentKind.INDEX,
    minute_sessions: int | None = None,
    start_price: float = 3000.0,
) -> SyntheticMarket:
    """Generate daily and 1-minute bars for the XSHG sessions in ``[start, end]``.

    ``minute_sessions`` keeps 1-minute bars for only the trailing N sessions (all when None).
    """
    days = trading_days(start, end)
    if not days:
        raise ValueError(f"no XSHG trading days between {start} and {end}")
    rng = np.random.default_rng(seed)
    n, m = len(days), MINUTES_PER_SESSION

    # GARCH(1,1) daily variance, long-run daily vol ~1.4%.
    omega, alpha, beta = 2e-6, 0.08, 0.91
    var = np.empty(n)
    ret = np.empty(n)
    v = omega / (1 - alpha - beta)
    for t in range(n):
        var[t] = v
        ret[t] = rng.standard_normal() * np.sqrt(v) + 0.0002
        v = omega + alpha * ret[t] ** 2 + beta * v
    sigma = np.sqrt(var)

    gap = 0.3 * sigma * rng.standard_normal(n)  # overnight part of the daily return
    weights = _u_shape(m)  # share of intraday variance per minute
    z = rng.standard_normal((n, m)) * np.sqrt(weights)[None, :]
    intraday = ret - gap  # intraday part so that close-to-close return equals ret
    # Brownian bridge pinned to the intraday return: increments sum to `intraday` exactly.
    z = z - z.sum(axis=1, keepdims=True) * weights[None, :]
    incr = z * (0.95 * sigma)[:, None] + intraday[:, None] * weights[None, :]

    log_close_prev = np.log(start_price) + np.concatenate([[0.0], np.cumsum(ret)[:-1]])
    log_open = log_close_prev + gap
    log_path = log_open[:, None] + np.cumsum(incr, axis=1)
    close = np.exp(log_path)
    open_ = np.exp(np.concatenate([log_open[:, None], log_path[:, :-1]], axis=1))
    wiggle = (
        np.abs(rng.standard_normal((n, m, 2)))
        * (0.25 * sigma[:, None, None])
        * np.sqrt(weights)[None, :, None]
    )
    high = np.maximum(open_, close) * np.exp(wiggle[..., 0])
    low = np.minimum(open_, close) * np.exp(-wiggle[..., 1])

    vol_regime = (sigma / sigma.mean())[:, None]
    volume = np.round(6e7 * vol_regime * weights[None, :] * m * rng.lognormal(0.0, 0.35, (n, m)))
    amount = volume * (close / start_price) * 12.0  # CNY; ~12 CNY per share at the start level

    day_arr = np.array(days, dtype="datetime64[D]")
    ts = (
        day_arr[:, None].astype("datetime64[m]")
        + (MINUTE_OFFSETS - _UTC_OFFSET_MIN)[None, :].astype("timedelta64[m]")
    ).astype("datetime64[us]")

    minute = pl.DataFrame(
        {
            "symbol": symbol,
            "kind": kind.value,
            "frequency": "1m",
            "source": SYNTHETIC_SOURCE,
            "session": np.repeat(day_arr, m),
            "ts": ts.ravel(),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
            "amount": amount.ravel(),
            "open_interest": None,
        }
    ).cast(BAR_SCHEMA)  # type: ignore[arg-type]

    daily = pl.DataFrame(
        {
            "symbol": symbol,
            "kind": kind.value,
            "frequency": "1d",
            "source": SYNTHETIC_SOURCE,
            "session": day_arr,
            # daily bars are stamped with the session close (15:00 exchange time = 07:00 UTC)
            "ts": (day_arr.astype("datetime64[m]") + np.timedelta64(_CLOSE_UTC_MIN, "m")).astype(
                "datetime64[us]"
            ),
            "open": open_[:, 0],
            "high": high.max(axis=1),
            "low": low.min(axis=1),
            "close": close[:, -1],
            "volume": volume.sum(axis=1),
            "amount": amount.sum(axis=1),
            "open_interest": None,
        }
    ).cast(BAR_SCHEMA)  # type: ignore[arg-type]

    if minute_sessions is not None:
        keep = set(days[max(0, n - minute_sessions) :]) if minute_sessions > 0 else set()
        minute = minute.filter(pl.col("session").is_in(sorted(keep)))
    return SyntheticMarket(daily=daily, minute=minute)
