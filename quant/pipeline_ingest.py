"""The pipeline's ingest step: bring in the run date's bars, then check them before the model.

Order: the SYNTHETIC market (its own symbol, when enabled), the real files directory (when
enabled), then every ``[[feeds]]`` entry for the run date.  Then today's daily bar of the run's
symbol must be in the store and pass the live checks (``quant.live_checks``).  A missing bar or
a feed error raises ``DataNotReady`` (the run waits and retries: ``waiting_for_data``, then
``late``); a bar that fails a check raises ``DataHeld`` (held for review, not forecast on).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from feeds.bulk import ingest_files
from feeds.ingest import expand_paths, ingest_synthetic
from feeds.read import NoDataError, daily_bars, resolve_source
from quant import live_checks
from quant.feeds_run import run_feeds

if TYPE_CHECKING:
    from quant.pipeline_steps import RunState, Writes

log = logging.getLogger(__name__)


class StepError(RuntimeError):
    """A step cannot complete today (retried on the next run)."""


class DataNotReady(StepError):
    """Today's bars have not arrived (or a feed failed): wait and retry, late past the deadline."""


class DataHeld(StepError):
    """Today's bar failed a live check: held for review instead of being forecast on."""


def _local_sources(st: RunState) -> dict[str, int]:
    counts = {"ingested": 0, "unchanged": 0, "failed": 0}
    p, d = st.cfg.pipeline, st.cfg.data
    if p.ingest_synthetic:
        r = ingest_synthetic(
            st.con,
            start=d.synthetic_start,
            end=d.synthetic_end,
            seed=d.synthetic_seed,
            minute_sessions=d.synthetic_minute_sessions,
            symbol=d.synthetic_symbol,
        )
        counts[r.status] += 1
    if p.ingest_real and d.real_data_dir.is_dir():
        for res in ingest_files(st.con, expand_paths([d.real_data_dir])):
            if res.report is not None:
                counts[res.report.status] += 1
            else:
                counts["failed"] += 1
                log.warning("ingest %s failed: %s", res.path, res.error)
    return counts


def step_ingest(st: RunState) -> tuple[dict[str, Any], Writes]:
    counts: dict[str, int] = {}
    feeds: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    if st.ingest:
        counts = _local_sources(st)
        feeds, errors = run_feeds(st.con, st.cfg, st.run_date, vendor=st.vendor)
    try:
        src = resolve_source(st.con, st.symbol, "1d", st.cfg.store.source_priority)
        today = daily_bars(st.con, st.symbol, start=st.run_date, end=st.run_date, source=src)
    except NoDataError as exc:
        raise DataNotReady("; ".join([str(exc), *errors])) from exc
    if today.is_empty() or errors:
        missing = [] if today.height else [f"no {st.symbol} daily bar for {st.run_date} yet"]
        raise DataNotReady("; ".join(missing + errors))
    detail: dict[str, Any] = {**counts, "feeds": feeds, "source": src}
    if live_checks.released(st.con, st.symbol, st.run_date):
        detail["checks"] = {"released": True}
        return detail, None
    report = live_checks.check_bar(
        st.con, st.symbol, src, st.run_date, st.cfg.live, priority=st.cfg.store.source_priority
    )
    if report.problems:
        live_checks.hold(st.con, st.symbol, st.run_date, src, report.problems)
        raise DataHeld(
            f"{st.symbol} {st.run_date} held for review: {'; '.join(report.problems)} "
            f"(after review: quant feeds release --date {st.run_date})"
        )
    detail["checks"] = report.as_dict()
    return detail, None
