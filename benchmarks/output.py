"""What every benchmark prints and writes: an aligned table, and its figures as JSON (``--json``).

The JSON carries the machine's load averages at the end of the run (``os.getloadavg``), because
absolute figures on a shared 2-core machine depend on what else runs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def load_average() -> str:
    """``uptime``'s load averages (1, 5, 15 minutes) and the core count."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def print_table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    sys.stdout.flush()


def write_json(path: Path | None, figures: dict[str, Any]) -> None:
    """Write ``figures`` plus the run's context to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    doc = {
        **figures,
        "load": load_average(),
        "host": platform.node(),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"figures written to {path}")
