"""What every benchmark prints and writes: an aligned table, and its figures as JSON (``--json``).

The JSON carries the machine's load averages at the end of the run (``os.getloadavg``) and the
share of CPU time the VM's host took back while it ran (``/proc/stat``'s steal, from the
benchmark's start to its end), because absolute figures on a shared 2-core machine depend on
what else runs, inside the VM and beside it.
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


def cpu_times(stat: str) -> tuple[int, int]:
    """(steal, total) clock ticks of all CPUs from the text of ``/proc/stat``; guest time is
    already counted in user and nice, so it is left out of the total."""
    fields = next(line for line in stat.splitlines() if line.startswith("cpu ")).split()[1:]
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    return ticks[7] if len(ticks) == 8 else 0, sum(ticks)


def _read_cpu_times() -> tuple[int, int] | None:
    try:
        return cpu_times(Path("/proc/stat").read_text())
    except (OSError, StopIteration, ValueError):
        return None


# the run's start: when the first benchmark imports this module, then each ``write_json`` (the
# next benchmark of ``python -m benchmarks`` starts where the last one ended)
_started = [_read_cpu_times()]


def steal_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of the CPU time between two ``cpu_times`` that the host took (None if unknown)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


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
    """Print the host's steal over the run; write ``figures`` plus the run's context to ``path``
    (nothing when ``path`` is None)."""
    now = _read_cpu_times()
    steal = steal_fraction(_started[0], now)
    _started[0] = now
    if steal is not None:
        print(f"machine: the host took {steal:.1%} of the CPU time while this ran (steal)")
    if path is None:
        return
    doc = {
        **figures,
        "cpu_steal_fraction": steal,
        "load": load_average(),
        "host": platform.node(),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    print(f"figures written to {path}")
