"""Calling a vendor API the way a desk needs: a timeout, bounded retries with backoff, and every
vendor failure (timeout, rate limit, empty frame, renamed column, stale bar) turned into one clear
``FeedError`` naming the call.

The vendor is any object with the API's functions as attributes (the ``akshare`` module in
production, a recorded stand-in in tests), so the adapters' parsing runs the same on both.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class FeedError(RuntimeError):
    """A feed could not deliver the bars asked for; nothing of the call was written."""


class FeedNotReady(FeedError):
    """The vendor has not published the session's bars yet (late data: retried later)."""


@dataclass(frozen=True)
class FetchPolicy:
    """Seconds one call may take, retries after a failure, first retry delay (it doubles)."""

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 2.0


def load_vendor(name: str = "akshare") -> Any:
    """The vendor module (optional ``akshare`` extra), or a ``FeedError`` saying how to add it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise FeedError(f"{name} is not installed: pip install '.[{name}]' ({exc})") from exc


def _with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` in a daemon thread; ``TimeoutError`` if it has not returned within ``timeout_s``.

    A timed-out call cannot be killed; its thread is abandoned (daemon, so it never blocks exit).
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="vendor-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise TimeoutError(f"no answer within {timeout_s:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, TimeoutError):
        return "timeout"
    if any(k in text for k in ("429", "rate limit", "too many requests", "频繁")):
        return "rate limited"
    if isinstance(exc, ConnectionError | OSError):
        return "connection error"
    return type(exc).__name__


def call_vendor(
    vendor: Any,
    function: str,
    policy: FetchPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """``vendor.function(**kwargs)`` under ``policy``; ``FeedError`` after the last retry."""
    what = f"{function}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    fn = getattr(vendor, function, None)
    if fn is None:
        raise FeedError(f"{what}: the vendor has no function {function!r} (API changed?)")
    last: BaseException | None = None
    for attempt in range(policy.retries + 1):
        if attempt:
            delay = policy.backoff_s * 2 ** (attempt - 1)
            assert last is not None
            log.warning("%s: %s (%s); retry %d in %.1fs", what, _kind(last), last, attempt, delay)
            sleep(delay)
        try:
            return _with_timeout(lambda: fn(**kwargs), policy.timeout_s)
        except Exception as exc:
            last = exc
    assert last is not None
    raise FeedError(
        f"{what}: {_kind(last)} after {policy.retries + 1} attempt(s): {last}"
    ) from last


def check_frame(frame: Any, required: Iterable[str], what: str) -> Any:
    """The vendor's pandas frame if it has rows and every ``required`` column, else FeedError."""
    if frame is None or not hasattr(frame, "columns"):
        raise FeedError(f"{what}: the vendor returned {type(frame).__name__}, not a frame")
    if len(frame) == 0:
        raise FeedNotReady(f"{what}: the vendor returned an empty frame")
    have = [str(c) for c in frame.columns]
    missing = [c for c in required if c not in have]
    if missing:
        raise FeedError(
            f"{what}: the vendor's frame lacks column(s) {missing} (has {have}); renamed upstream?"
        )
    return frame
