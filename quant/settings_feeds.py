"""The ``[[feeds]]``, ``live`` and ``calendar`` sections of the configuration tree.

``[[feeds]]`` lists what the daily job's ingest step brings in for the run date, in order: a
vendor's drop folder (``kind = "inbox"``) or a vendor API adapter (``kind = "adapter"``).
``live`` says how long a run waits for a late bar and which checks today's bar must pass before
the model sees it.  ``calendar`` extends the exchange holiday list and bounds how far it is
trusted.  Frozen and strict like every other section.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from feeds.frozen import Frozen


class InboxFeed(Frozen):
    """A vendor's drop folder: new files are ingested, then moved to ``archive/<status>/``."""

    kind: Literal["inbox"] = "inbox"
    name: str = Field("inbox", description="feed name in run rows and logs")
    directory: Path = Field(description="the folder the vendor drops files into")
    archive: Path | None = Field(
        None, description="where taken files go, by ingest status (default: <directory>/archive)"
    )
    profile: str | None = Field(None, description="source profile (default: from the header)")
    symbol: str | None = Field(None, description="symbol for files that carry none")
    settle_s: float = Field(
        10.0,
        ge=0,
        description="a file is taken only once unmodified this long (still being written else)",
    )
    marker_suffix: str | None = Field(
        None,
        description="when set (e.g. '.done'), a file is taken only once the vendor's completion "
        "marker <file><suffix> exists; the marker is archived with it",
    )


class AdapterFeed(Frozen):
    """A vendor API adapter (``feeds.adapters``) fetched for the run date."""

    kind: Literal["adapter"] = "adapter"
    name: str | None = Field(None, description="feed name (default: adapter:symbol:frequency)")
    adapter: str = Field(description="registered adapter, e.g. akshare-index-daily")
    symbol: str = Field(description="store symbol the bars land under, e.g. 000300.SH")
    frequency: Literal["1d", "1m"] = Field(description="bar length the adapter returns")
    timeout_s: float = Field(30.0, gt=0, description="seconds one vendor call may take")
    retries: int = Field(3, ge=0, description="retries of a failed call (timeouts, rate limits)")
    backoff_s: float = Field(2.0, ge=0, description="first retry delay; doubles each retry")
    main_by: Literal["open_interest", "volume"] = Field(
        "open_interest",
        description="futures main contract: the largest by this on the previous session",
    )

    @property
    def label(self) -> str:
        return self.name or f"{self.adapter}:{self.symbol}:{self.frequency}"


Feed = Annotated[InboxFeed | AdapterFeed, Field(discriminator="kind")]


class LiveSettings(Frozen):
    """Late data and the checks today's bar passes before it is forecast on."""

    retry_interval_s: float = Field(
        300.0, gt=0, description="while today's bar is missing, try the feeds again this often"
    )
    deadline: time = Field(
        time(18, 0),
        description="exchange time on the run date after which a missing bar marks the day late",
    )
    second_source: str | None = Field(
        None, description="source whose close today's close must agree with, when it has one"
    )
    max_close_rel_diff: float = Field(
        0.002, gt=0, description="largest |close / second-source close - 1| accepted"
    )
    resample_rel_tol: float = Field(
        0.002,
        gt=0,
        description="the session's 1-minute bars of the symbol, resampled, must match the daily "
        "bar's open/high/low/close within this relative difference",
    )
    max_move: float = Field(
        0.11,
        gt=0,
        description="a close-to-close move beyond this is held in quarantine for review "
        "(CSI 300 members move at most 10%, 20% on the growth boards)",
    )


class CalendarSettings(Frozen):
    """How far the XSHG holiday list is known, and the holidays published after the library."""

    horizon: date | None = Field(
        None,
        description="last day the holiday list is complete (default: end of the last year "
        "pandas-market-calendars lists holidays for)",
    )
    extra_holidays: tuple[date, ...] = Field(
        (), description="exchange holidays the library does not know yet (official notice)"
    )
    warn_days: int = Field(
        30, ge=0, description="warn in the log, /readyz and /metrics this many days ahead"
    )
