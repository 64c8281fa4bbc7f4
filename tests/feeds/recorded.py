"""A recorded AkShare stand-in: vendor frames in the layouts of the real files, no network.

The frames copy the column layouts of ../shared/data/real (Eastmoney daily with its Chinese
headers and derived columns, Sina 1-minute index ``day,...``, Sina futures ``datetime,...,hold``)
and of CFFEX's daily data (``get_cffex_daily``); their numbers come from the seeded synthetic
generator so that daily bars are the exact aggregate of the minute bars.  ``available_through``
plays the vendor's clock: nothing after it has been published yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
import polars as pl

from feeds.calendar import EXCHANGE_TZ
from feeds.synthetic import synthetic_market

BASIS = 12.0  # futures trade this many points above the index (an unadjusted contract)
ROLL_JUMP = 40.0  # the next contract trades this much higher: a roll is a price jump


def _local(ts: pl.Series) -> list[str]:
    return [t.astimezone(EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M:%S") for t in ts.to_list()]


@dataclass
class RecordedVendor:
    """The four AkShare functions the adapters call, answering from recorded frames."""

    start: date
    end: date
    seed: int = 7
    minute_sessions: int = 30
    roll: date | None = None  # first session on which IF2302 (not IF2301) has the most OI
    available_through: date | None = None
    calls: list[str] = field(default_factory=list)
    delay_s: float = 0.0  # every call sleeps this long (timeouts)
    rename: dict[str, str] = field(default_factory=dict)  # column renames (vendor changes)
    stale: bool = False  # serve yesterday's daily bar again as today's

    def __post_init__(self) -> None:
        m = synthetic_market(
            self.start, self.end, seed=self.seed, minute_sessions=self.minute_sessions
        )
        self.daily, self.minute = m.daily, m.minute

    def _through(self) -> date:
        return self.available_through or self.end

    def _called(self, name: str) -> None:
        self.calls.append(name)
        if self.delay_s:
            time.sleep(self.delay_s)

    def _out(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.rename(columns=self.rename) if self.rename else df

    # Eastmoney daily, the layout of csi300_daily_eastmoney_quantbt.csv (volume in lots).
    def index_zh_a_hist(
        self, symbol: str, period: str, start_date: str, end_date: str
    ) -> pd.DataFrame:
        self._called("index_zh_a_hist")
        lo, hi = pd.Timestamp(start_date).date(), pd.Timestamp(end_date).date()
        hi = min(hi, self._through())
        d = self.daily.filter(pl.col("session").is_between(lo, hi))
        rows = d.to_dicts()
        if self.stale and len(rows) >= 2:
            rows[-1] = {**rows[-2], "session": rows[-1]["session"]}
        prev = [None, *[r["close"] for r in rows[:-1]]]
        return self._out(
            pd.DataFrame(
                {
                    "日期": [r["session"].isoformat() for r in rows],
                    "开盘": [round(r["open"], 2) for r in rows],
                    "收盘": [round(r["close"], 2) for r in rows],
                    "最高": [round(r["high"], 2) for r in rows],
                    "最低": [round(r["low"], 2) for r in rows],
                    "成交量": [int(r["volume"] // 100) for r in rows],
                    "成交额": [r["amount"] for r in rows],
                    "振幅": [round(100 * (r["high"] - r["low"]) / r["close"], 2) for r in rows],
                    "涨跌幅": [
                        0.0 if p is None else round(100 * (r["close"] / p - 1), 2)
                        for r, p in zip(rows, prev, strict=True)
                    ],
                    "涨跌额": [
                        0.0 if p is None else round(r["close"] - p, 2)
                        for r, p in zip(rows, prev, strict=True)
                    ],
                    "换手率": [0.5 for _ in rows],
                }
            )
        )

    def _minutes(self) -> pl.DataFrame:
        return self.minute.filter(pl.col("session") <= self._through())

    # Sina 1-minute index bars, the layout of csi300_1min_sina_202308.csv.
    def stock_zh_a_minute(self, symbol: str, period: str, adjust: str) -> pd.DataFrame:
        self._called("stock_zh_a_minute")
        m = self._minutes()
        return self._out(
            pd.DataFrame(
                {
                    "day": _local(m["ts"]),
                    **{c: m[c].round(3).to_list() for c in ("open", "high", "low", "close")},
                    "volume": m["volume"].to_list(),
                }
            )
        )

    def contract_on(self, session: date) -> str:
        return "IF2302" if self.roll is not None and session >= self.roll else "IF2301"

    # CFFEX daily data: every IF contract of a session with its volume and open interest.
    def get_cffex_daily(self, date: str) -> pd.DataFrame | None:
        self._called("get_cffex_daily")
        d = pd.Timestamp(date).date()
        if d > self._through():
            return None
        # The contract that is main on the NEXT session already has the larger OI today.
        nxt = d + timedelta(days=1)
        while nxt.weekday() >= 5:
            nxt += timedelta(days=1)
        main = self.contract_on(nxt)
        rows = []
        for code in ("IF2301", "IF2302", "IF2303"):
            oi = 150_000 if code == main else 40_000 if code != "IF2303" else 9_000
            rows.append([code, d.strftime("%Y%m%d"), 4000.0, 4010.0, 3990.0, 4005.0,
                         oi // 2, oi, 1e10, 4004.0, 3998.0, "IF"])  # fmt: skip
        rows.append(["IC2301", d.strftime("%Y%m%d"), 6000.0, 6010.0, 5990.0, 6005.0,
                     99_000, 999_000, 1e10, 6004.0, 5998.0, "IC"])  # fmt: skip
        cols = ["symbol", "date", "open", "high", "low", "close", "volume", "open_interest",
                "turnover", "settle", "pre_settle", "variety"]  # fmt: skip
        return self._out(pd.DataFrame(rows, columns=cols))

    # Sina futures 1-minute bars of ONE contract, the layout of if_futures_1min_sina_*.csv.
    def futures_zh_minute_sina(self, symbol: str, period: str) -> pd.DataFrame:
        self._called("futures_zh_minute_sina")
        m = self._minutes()
        shift = BASIS + (ROLL_JUMP if symbol == "IF2302" else 0.0)
        return self._out(
            pd.DataFrame(
                {
                    "datetime": _local(m["ts"]),
                    **{
                        c: (m[c] + shift).round(1).to_list()
                        for c in ("open", "high", "low", "close")
                    },
                    "volume": (m["volume"] // 100_000).cast(pl.Int64).to_list(),
                    "hold": [120_000] * m.height,
                }
            )
        )
