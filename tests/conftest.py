"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feeds.calendar import configure


@pytest.fixture(autouse=True)
def _library_calendar() -> Iterator[None]:
    """Every test starts and ends on the library's XSHG calendar (a test may configure another)."""
    configure()
    yield
    configure()
