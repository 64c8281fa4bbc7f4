"""Vendor calls: timeout, bounded retries with doubling backoff, and clear feed errors."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pandas as pd
import pytest

from feeds.vendor import FeedError, FeedNotReady, FetchPolicy, call_vendor, check_frame


def test_a_call_that_hangs_times_out_and_is_retried_with_backoff() -> None:
    delays: list[float] = []
    calls: list[int] = []

    def hang(**_: object) -> None:
        calls.append(1)
        time.sleep(2.0)

    vendor = SimpleNamespace(hist=hang)
    policy = FetchPolicy(timeout_s=0.05, retries=2, backoff_s=0.5)
    with pytest.raises(FeedError, match=r"hist\(symbol='000300'\): timeout after 3 attempt"):
        call_vendor(vendor, "hist", policy, sleep=delays.append, symbol="000300")
    assert delays == [0.5, 1.0] and len(calls) == 3


def test_a_rate_limit_is_retried_then_the_answer_returned() -> None:
    answers = iter([RuntimeError("HTTP 429 Too Many Requests"), "frame"])

    def flaky() -> str:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    delays: list[float] = []
    got = call_vendor(SimpleNamespace(f=flaky), "f", FetchPolicy(1.0, 3, 2.0), sleep=delays.append)
    assert got == "frame" and delays == [2.0]


def test_the_last_error_is_named_when_retries_run_out() -> None:
    def boom() -> None:
        raise ConnectionError("connection reset by peer")

    with pytest.raises(FeedError, match=r"connection error after 2 attempt.*reset by peer"):
        call_vendor(SimpleNamespace(f=boom), "f", FetchPolicy(1.0, 1, 0.0), sleep=lambda _: None)


def test_a_missing_vendor_function_is_a_feed_error() -> None:
    with pytest.raises(FeedError, match="has no function 'index_zh_a_hist'"):
        call_vendor(SimpleNamespace(), "index_zh_a_hist", FetchPolicy())


def test_empty_frames_and_renamed_columns() -> None:
    with pytest.raises(FeedNotReady, match="empty frame"):
        check_frame(pd.DataFrame({"日期": []}), ["日期"], "hist")
    renamed = pd.DataFrame({"日期": ["2024-01-02"], "收盘价": [1.0]})
    with pytest.raises(FeedError, match=r"lacks column\(s\) \['收盘'\].*renamed upstream"):
        check_frame(renamed, ["日期", "收盘"], "hist")
    with pytest.raises(FeedError, match="returned NoneType, not a frame"):
        check_frame(None, ["日期"], "hist")
