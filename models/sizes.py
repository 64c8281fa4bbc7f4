"""How much labelled history a fit needs: the one home of the minimum-training-size rules.

- a from-scratch fit (a walk-forward block, a model of an ablation, the pipeline's first
  champion) needs ``MIN_TRAIN`` labelled samples;
- a fine-tune needs more than ``FINETUNE_SLACK`` trainable sessions before the gate window;
- ``quant main`` checks the daily bar count before it builds any window: the warm-up, the
  held-out sessions and ``MIN_TRAIN``, plus ``FINETUNE_SLACK`` sessions for gaps and the label
  horizon.
"""

from __future__ import annotations

MIN_TRAIN = 100  # labelled samples a from-scratch fit needs
FINETUNE_SLACK = 10  # a gate split needs more than this many sessions beyond the gate window


def enough_to_train(n: int) -> bool:
    """Whether ``n`` labelled samples are enough for a from-scratch fit."""
    return n >= MIN_TRAIN


def daily_bars_needed(warmup: int, holdout: int) -> int:
    """Daily bars a first model needs before any window is built (``quant main``'s check)."""
    return warmup + holdout + MIN_TRAIN + FINETUNE_SLACK


def gate_pool_too_small(n: int, window: int) -> bool:
    """Whether ``n`` labelled sessions are too few to split off a gate window of ``window``."""
    return n <= window + FINETUNE_SLACK
