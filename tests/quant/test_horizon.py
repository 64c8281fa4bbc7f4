"""Past the calendar's horizon nothing is scheduled or run; extra holidays from config apply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from feeds.calendar import configure, horizon_warning
from feeds.store import open_store
from quant.config import QuantConfig, apply_calendar
from quant.pipeline import RunResult, run_daily
from quant.scheduler import DailyRunner, TradingDayTrigger
from tests.feeds.test_calendar_horizon import HOLIDAYS_2027

SH = ZoneInfo("Asia/Shanghai")
TRIGGER = TradingDayTrigger(15, 30, "Asia/Shanghai")
EXTENDED = {"horizon": "2027-12-31", "extra_holidays": [d.isoformat() for d in HOLIDAYS_2027]}


def test_no_firing_is_scheduled_past_the_horizon(caplog: pytest.LogCaptureFixture) -> None:
    assert TRIGGER.get_next_fire_time(None, datetime(2026, 12, 31, 10, tzinfo=SH)) == datetime(
        2026, 12, 31, 15, 30, tzinfo=SH
    )
    with caplog.at_level("ERROR"):
        assert TRIGGER.get_next_fire_time(None, datetime(2026, 12, 31, 16, tzinfo=SH)) is None
    assert "no run scheduled: 2027-01-01 is past the calendar horizon 2026-12-31" in caplog.text
    configure(extra_holidays=HOLIDAYS_2027, horizon=date(2027, 12, 31))
    nxt = TRIGGER.get_next_fire_time(None, datetime(2026, 12, 31, 16, tzinfo=SH))
    assert nxt == datetime(2027, 1, 4, 15, 30, tzinfo=SH)  # not the New Year holiday


def test_catch_up_warns_before_the_horizon_and_runs_nothing_past_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[date] = []

    def run_day(d: date) -> RunResult:
        ran.append(d)
        return RunResult(d, "000300.SH", "done")

    runner = DailyRunner(
        TRIGGER,
        run_day,
        lambda: date(2026, 12, 30),
        now=lambda: datetime(2027, 1, 6, 16, tzinfo=SH),
        warn=lambda today: horizon_warning(today, 30),
    )
    with caplog.at_level("WARNING"):
        runner.catch_up()
    assert ran == [date(2026, 12, 31)]  # 2027's "sessions" of the library are not run
    assert "calendar horizon 2026-12-31 has passed" in caplog.text


def test_a_run_whose_next_session_is_unknown_is_not_started(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    r = run_daily(con, cfg, date(2026, 12, 31))
    assert r.status == "beyond_horizon" and "past the calendar horizon" in (r.error or "")
    assert run_daily(con, cfg, date(2027, 1, 4)).status == "beyond_horizon"
    extended = cfg.model_copy(update={"calendar": cfg.calendar.model_validate(EXTENDED)})
    # With the 2027 holidays configured the day runs (and waits: there are no bars for it).
    assert run_daily(con, extended, date(2026, 12, 31)).status == "waiting_for_data"
    assert run_daily(con, extended, date(2027, 1, 1)).status == "skipped"  # New Year's Day
    con.close()


def test_calendar_config_is_validated_and_applied() -> None:
    cfg = QuantConfig.model_validate({"calendar": EXTENDED})
    apply_calendar(cfg)
    from feeds.calendar import horizon, is_trading_day

    assert horizon() == date(2027, 12, 31) and not is_trading_day(date(2027, 2, 10))
    with pytest.raises(ValueError, match="extra_holidays"):
        QuantConfig.model_validate({"calendar": {"extra_holidays": ["2027-13-01"]}})
