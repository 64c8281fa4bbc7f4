"""The benchmarks' run context: CPU steal read from ``/proc/stat``, computed by hand here."""

from __future__ import annotations

from benchmarks.output import cpu_times, steal_fraction

# the aggregate line first, then per-CPU lines; user nice system idle iowait irq softirq steal
# guest guest_nice (guest time is already inside user and nice)
BEFORE = """cpu  100 10 50 800 5 0 5 30 7 0
cpu0 50 5 25 400 2 0 3 15 7 0
intr 12345
"""
AFTER = """cpu  160 10 70 900 5 0 15 60 9 0
cpu0 80 5 35 450 2 0 8 30 9 0
"""


def test_cpu_times_sum_the_first_eight_fields_of_the_cpu_line() -> None:
    assert cpu_times(BEFORE) == (30, 100 + 10 + 50 + 800 + 5 + 0 + 5 + 30)
    assert cpu_times(AFTER) == (60, 160 + 10 + 70 + 900 + 5 + 0 + 15 + 60)


def test_steal_is_the_stolen_share_of_the_ticks_between_two_readings() -> None:
    # 30 of the 220 ticks between the readings (60 user, 20 system, 100 idle, 10 softirq, 30)
    assert steal_fraction(cpu_times(BEFORE), cpu_times(AFTER)) == 30 / 220


def test_a_kernel_without_a_steal_field_counts_none() -> None:
    assert cpu_times("cpu  1 2 3 4\n") == (0, 10)


def test_unknown_or_empty_intervals_give_none() -> None:
    assert steal_fraction(None, (1, 2)) is None
    assert steal_fraction((1, 2), None) is None
    assert steal_fraction((5, 100), (5, 100)) is None
