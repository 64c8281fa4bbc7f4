"""Garbage-collector policy of a server process: the startup heap frozen, young objects cheap.

A worker holds ~380,000 GC-tracked objects after it has imported torch and loaded the champion
(modules, the TorchScript graph, the calendar); every full (generation 2) collection walked all
of them: about 200 ms on this 2-core machine with the event loop stopped, several times a minute
under load, which was most of the forecast route's p99.  ``gc.freeze`` moves what exists after
startup (and after each reload) into the permanent generation that collections skip; requests
allocate and drop short-lived objects only, so collections stay in the young generations.
"""

from __future__ import annotations

import gc

# Young-generation threshold: allocations between collections of generation 0 (CPython's 700
# means a collection every few forecast requests).  The older thresholds are CPython's.
GEN0 = 20_000


def settle(*, collect: bool) -> None:
    """Freeze the heap as it is now; ``collect`` first drops garbage (a model was replaced).

    A full collection of the whole heap takes as long as the pauses this avoids (~200 ms), so
    it runs only when a model was swapped (its old graph may hold cycles); a new snapshot only
    freezes.
    """
    if collect:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def configure() -> None:
    """Startup: thresholds for a server process, then the heap collected and frozen."""
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GEN0, g1, g2)
    settle(collect=True)
