"""Model inputs built from bars: pure functions over polars frames, no model code, no labels.

Decision time is the close of session t (15:00 Asia/Shanghai).  Every feature of t is a function
of daily bars with session <= t and intraday bars ending at or before that close; the truncation
property test (tests/models/test_truncation.py) re-checks this on every CI run.

Daily tokens (one per session, the last L sessions):
  ret           log(close_t / close_{t-1})
  range         log(high / low)
  close_pos     (close - low) / (high - low), 0.5 on a zero-range day
  volume_z      log volume z-scored against the trailing ``zscore_window`` sessions (incl. t)
  amount_z      the same for log turnover; 0 on every session when ``spec.use_amount`` is
                False (a series without turnover: see ``spec_for_series``)
  realised_vol  standard deviation of ``ret`` over the trailing ``vol_window`` sessions

Intraday tokens (one per bar slot of the last K sessions on the cash-market grid):
  ret           log return within the session; the first bar uses its own open, so the
                overnight gap (and the jump of an unadjusted futures roll) is never read as a move
  range         log(high / low)
  log_volume    log(1 + volume) minus its session mean (volume regimes differ by 50x across years)
  session_pos   trading-time position in [0, 1): the lunch break takes no time
  afternoon     1 after the lunch break, else 0

Session summaries (appended to each daily token, from that session's intraday bars up to its
close; exactly 0 on sessions without enough bars, flagged by ``intraday_present``):
  last30_ret           log return of the last 30 minutes (14:30 -> 15:00)
  intra_rv             intraday realised volatility: sqrt of the sum of squared bar returns
  rv_ratio             intra_rv over the daily ``realised_vol`` of the same session
  last30_volume_share  share of the session's volume traded in the last 30 minutes
  basis                log(intraday close at 15:00 / daily close): the IF-minus-index basis
                       when the intraday bars are IF futures and the daily bars the index
  intraday_present     1 when the session has at least half of its bar slots, else 0
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from feeds.calendar import all_trading_days
from feeds.session import CASH_GRID, LOCAL_OFFSET
from models.config import FeatureSpec

DAILY_FEATURES = ("ret", "range", "close_pos", "volume_z", "amount_z", "realised_vol")
INTRADAY_FEATURES = ("ret", "range", "log_volume", "session_pos", "afternoon")
SESSION_FEATURES = (
    "last30_ret",
    "intra_rv",
    "rv_ratio",
    "last30_volume_share",
    "basis",
    "intraday_present",
)
TOKEN_FEATURES = DAILY_FEATURES + SESSION_FEATURES  # the columns of Windows.x_daily

GRID = CASH_GRID  # the tokens' session grid; its afternoon close is the decision time
ZSCORE_EPS = 1e-6  # added to the rolling standard deviation of a z-score
FLAT_CLOSE_POS = 0.5  # close_pos of a zero-range day


class FeatureError(ValueError):
    """Bars cannot be turned into model inputs (too short, gaps, NaN, bad prices)."""


@dataclass(frozen=True)
class Windows:
    """Model inputs of N decision sessions (float32 arrays, batch first)."""

    sessions: np.ndarray  # [N] datetime64[D], the decision session t
    x_daily: np.ndarray  # [N, L, len(TOKEN_FEATURES)]
    x_intra: np.ndarray  # [N, K*B, len(INTRADAY_FEATURES)]
    m_intra: np.ndarray  # [N, K*B] bool, True where a bar is present
    has_intra: np.ndarray  # [N] bool, any intraday bar in the window

    def __len__(self) -> int:
        return int(self.sessions.shape[0])

    def take(self, idx: np.ndarray) -> Windows:
        return Windows(
            self.sessions[idx],
            self.x_daily[idx],
            self.x_intra[idx],
            self.m_intra[idx],
            self.has_intra[idx],
        )


def slots_per_session(minutes: int) -> int:
    """Bar slots of one cash-market session (240 trading minutes)."""
    if minutes not in (1, 5):
        raise FeatureError(f"intraday bars must be 1 or 5 minutes long, got {minutes}")
    return GRID.slots(minutes)


def _check_values(frame: pl.DataFrame, cols: tuple[str, ...], what: str) -> None:
    for c in cols:
        s = frame.get_column(c)
        bad = s.is_null() | s.is_nan()
        if bad.any():
            first = frame.filter(bad).get_column("session")[0]
            raise FeatureError(f"{what}: {c} is null/NaN (first at session {first})")
    for c in ("open", "high", "low", "close"):
        if (frame.get_column(c) <= 0).any():
            raise FeatureError(f"{what}: non-positive {c}")


def spec_for_series(daily: pl.DataFrame, spec: FeatureSpec) -> FeatureSpec:
    """The feature spec to train on ``daily``: the one policy for a series without turnover.

    When any daily bar lacks ``amount`` (a plain OHLCV file), the turnover feature is dropped
    (``use_amount=False``, recorded in the checkpoint's spec): the model never reads amount, in
    training or serving.  A model trained with amount refuses bars without it
    (``FeatureError``).  Nothing is estimated.
    """
    if "amount" not in daily.columns:
        return spec.model_copy(update={"use_amount": False})
    a = daily.get_column("amount")
    complete = not (a.is_null() | a.is_nan()).any() if daily.height else False
    return (
        spec if complete or not spec.use_amount else spec.model_copy(update={"use_amount": False})
    )


def daily_feature_table(daily: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """One row per session: ``session``, the DAILY_FEATURES (null in the warm-up), ``gap``.

    ``gap`` is True when trading days are missing between the previous row and this one.
    """
    if daily.is_empty():
        raise FeatureError("no daily bars")
    d = daily.sort("session")
    if d.get_column("session").is_duplicated().any():
        raise FeatureError("daily bars hold duplicate sessions")
    if spec.use_amount:
        if "amount" not in d.columns or d.get_column("amount").is_null().all():
            raise FeatureError(
                "daily bars carry no amount (turnover), but the model was trained with the "
                "turnover feature (FeatureSpec.use_amount); send amount on every bar, or use "
                "a model trained on a series without amount"
            )
        _check_values(d, ("open", "high", "low", "close", "volume", "amount"), "daily bars")
    else:
        _check_values(d, ("open", "high", "low", "close", "volume"), "daily bars")
    # Position of each session in the XSHG calendar: a step of more than one is a gap.
    cal = np.array(all_trading_days(), dtype="datetime64[D]")
    pos = np.searchsorted(cal, d.get_column("session").to_numpy().astype("datetime64[D]"))
    gap = np.concatenate([[False], np.diff(pos) > 1])
    ret = (pl.col("close") / pl.col("close").shift(1)).log()
    hl = pl.col("high") - pl.col("low")

    def zscore(col: str) -> pl.Expr:
        x = pl.col(col).log1p()
        w = spec.zscore_window
        return (x - x.rolling_mean(w)) / (x.rolling_std(w) + ZSCORE_EPS)

    return d.select(
        "session",
        ret.alias("ret"),
        (pl.col("high") / pl.col("low")).log().alias("range"),
        pl.when(hl > 0)
        .then((pl.col("close") - pl.col("low")) / hl)
        .otherwise(FLAT_CLOSE_POS)
        .alias("close_pos"),
        zscore("volume").alias("volume_z"),
        (zscore("amount") if spec.use_amount else pl.lit(0.0)).alias("amount_z"),
        ret.rolling_std(spec.vol_window).alias("realised_vol"),
        pl.Series("gap", gap, dtype=pl.Boolean),
    )


def intraday_feature_table(intraday: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """One row per visible bar: ``session``, ``slot`` (grid index) and the INTRADAY_FEATURES.

    Bars off the cash-market grid (e.g. 09:15-09:30 or 15:00-15:15 futures trading before 2016)
    and bars ending after the 15:00 decision time are dropped.
    """
    n_slots = slots_per_session(minutes)
    if intraday.is_empty():
        return pl.DataFrame(
            schema={
                "session": pl.Date,
                "slot": pl.Int32,
                **dict.fromkeys(INTRADAY_FEATURES, pl.Float64),
                "close": pl.Float64,
            }
        )
    _check_values(intraday, ("open", "high", "low", "close", "volume"), "intraday bars")
    # Exchange time is UTC+8 all year (no DST since 1991): shifting is exact and much cheaper
    # than a time-zone conversion.
    local = pl.col("ts").dt.replace_time_zone(None) + LOCAL_OFFSET
    mod = pl.col("_mod")
    half = GRID.morning_minutes // minutes
    slot = pl.when(GRID.on_grid(mod, minutes)).then(GRID.slot(mod, minutes)).otherwise(None)
    bars = (
        intraday.sort("ts")
        .with_columns(
            (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)).alias("_mod"),
            (local.dt.date() == pl.col("session")).alias("_same_day"),
        )
        .filter((mod % minutes == 0) & pl.col("_same_day") & pl.col("ts").is_first_distinct())
        .with_columns(slot.cast(pl.Int32).alias("slot"))
        .filter(pl.col("slot").is_not_null())
    )
    # Previous close within the same session only (bars are sorted, sessions contiguous).
    same_session = pl.col("session") == pl.col("session").shift(1)
    prev_close = pl.when(same_session).then(pl.col("close").shift(1)).otherwise(pl.col("open"))
    lv = (pl.col("volume") + 1.0).log()
    return bars.select(
        "session",
        "slot",
        (pl.col("close") / prev_close).log().alias("ret"),
        (pl.col("high") / pl.col("low")).log().alias("range"),
        (lv - lv.mean().over("session")).alias("log_volume"),
        (pl.col("slot").cast(pl.Float64) / n_slots).alias("session_pos"),
        (pl.col("slot") >= half).cast(pl.Float64).alias("afternoon"),
        pl.col("close").cast(pl.Float64),
    )


def session_summaries(
    ret: np.ndarray,
    log_volume: np.ndarray,
    mask: np.ndarray,
    close_at_close: np.ndarray,
    daily_close: np.ndarray,
    realised_vol: np.ndarray,
) -> np.ndarray:
    """[S, len(SESSION_FEATURES)] summaries of S sessions from their [S, B] bar grids.

    ``ret``/``log_volume`` are the intraday token features, ``mask`` the present bars,
    ``close_at_close`` the close of the bar ending 15:00 (NaN when absent), ``daily_close`` and
    ``realised_vol`` the same sessions' daily values.  The serving twin calls this too.
    """
    S, B = mask.shape
    last = np.zeros(B, dtype=bool)
    last[B - 30 * B // GRID.trading_minutes :] = True  # the bar slots of 14:30-15:00
    r = np.where(mask, ret, 0.0).astype(np.float64)
    vol = np.where(mask, np.exp(np.where(mask, log_volume, 0.0).astype(np.float64)), 0.0)
    present = mask.sum(axis=1) >= B // 2
    rv = np.sqrt((r * r).sum(axis=1))
    tot = vol.sum(axis=1)
    base = np.where(np.isfinite(close_at_close) & (close_at_close > 0), close_at_close, daily_close)
    out = np.stack(
        [
            r[:, last].sum(axis=1),
            rv,
            rv / np.maximum(np.nan_to_num(realised_vol, nan=0.0), 1e-4),
            vol[:, last].sum(axis=1) / np.maximum(tot, 1e-12),
            np.log(base / daily_close),
            np.ones(S),
        ],
        axis=1,
    )
    return np.where(present[:, None], out, 0.0)


def build_windows(
    daily: pl.DataFrame,
    intraday: pl.DataFrame | None,
    spec: FeatureSpec,
    *,
    sessions: list[date] | None = None,
    strict: bool = False,
) -> Windows:
    """Model inputs for each decision session (default: every session with a full window).

    Windows that would reach into the warm-up or across a gap in the daily bars are skipped, or
    raise ``FeatureError`` when ``strict`` (the forecaster asks for one session and must not get
    silent garbage).
    """
    table = daily_feature_table(daily, spec)
    all_sessions = table.get_column("session").to_list()
    pos = {s: i for i, s in enumerate(all_sessions)}
    feats = table.select(DAILY_FEATURES).to_numpy().astype(np.float64)
    complete = ~np.isnan(feats).any(axis=1)
    gap = table.get_column("gap").to_numpy()
    # Index of the last gap at or before each row, to reject windows that span one.
    last_gap = np.maximum.accumulate(np.where(gap, np.arange(len(gap)), -1))
    L, K = spec.daily_window, spec.intraday_sessions
    B = slots_per_session(spec.intraday_minutes)

    wanted = all_sessions if sessions is None else sessions
    keep: list[int] = []
    for s in wanted:
        i = pos.get(s)
        reason = None
        if i is None:
            reason = f"no daily bar for decision session {s}"
        elif i - L + 1 < 0 or not complete[i - L + 1 : i + 1].all():
            reason = f"too little history before {s}: need {spec.warmup} sessions"
        elif last_gap[i] > i - L + 1:  # a gap flag at row j: days missing before j
            reason = f"trading days missing in the daily window ending {s}"
        if reason is None and i is not None:
            keep.append(i)
        elif strict:
            raise FeatureError(reason)
    idx = np.asarray(keep, dtype=np.int64)

    # Dense intraday grid aligned with the daily sessions: [n_sessions, B, F] and its mask.
    dense = np.zeros((len(all_sessions), B, len(INTRADAY_FEATURES)), dtype=np.float32)
    mask = np.zeros((len(all_sessions), B), dtype=bool)
    close_at_close = np.full(len(all_sessions), np.nan)
    if intraday is not None and not intraday.is_empty():
        bars = intraday_feature_table(intraday, spec.intraday_minutes)
        rows = np.array([pos.get(s, -1) for s in bars.get_column("session").to_list()])
        ok = rows >= 0
        slots = bars.get_column("slot").to_numpy()
        dense[rows[ok], slots[ok]] = bars.select(INTRADAY_FEATURES).to_numpy()[ok]
        mask[rows[ok], slots[ok]] = True
        at_close = ok & (slots == B - 1)
        close_at_close[rows[at_close]] = bars.get_column("close").to_numpy()[at_close]
    ret_i, lv_i = INTRADAY_FEATURES.index("ret"), INTRADAY_FEATURES.index("log_volume")
    summary = session_summaries(
        dense[:, :, ret_i],
        dense[:, :, lv_i],
        mask,
        close_at_close,
        daily.sort("session").get_column("close").to_numpy().astype(np.float64),
        feats[:, DAILY_FEATURES.index("realised_vol")],
    )
    feats = np.concatenate([feats, summary], axis=1)

    win_d = idx[:, None] + np.arange(-L + 1, 1)[None, :]
    win_i = idx[:, None] + np.arange(-K + 1, 1)[None, :]
    valid_i = win_i >= 0
    win_i = np.clip(win_i, 0, None)
    x_intra = dense[win_i].reshape(len(idx), K * B, len(INTRADAY_FEATURES))
    m_intra = (mask[win_i] & valid_i[:, :, None]).reshape(len(idx), K * B)
    x_intra = np.where(m_intra[:, :, None], x_intra, 0.0).astype(np.float32)
    return Windows(
        sessions=np.array([all_sessions[i] for i in idx], dtype="datetime64[D]"),
        x_daily=feats[win_d].astype(np.float32),
        x_intra=x_intra,
        m_intra=m_intra,
        has_intra=m_intra.any(axis=1),
    )
