"""The ``pipeline`` section of the configuration tree: daily run, fine-tune, gate, scheduler.

Frozen and strict like every other section.  A fine-tune's work budget is a number of optimiser
steps (reproducible); its wall-clock budget in seconds is a hard cap on top.  Session counts are
XSHG trading sessions.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field

from feeds.frozen import Frozen


class FinetuneSettings(Frozen):
    """Continual fine-tuning of the champion on the newest sessions plus a replay sample."""

    budget_s: float = Field(
        600.0,
        gt=0,
        description="wall-clock hard cap of one fine-tune, preparation and save included",
    )
    max_steps: int = Field(
        2,
        ge=1,
        description="work budget: optimiser steps per ensemble member (half an epoch of the "
        "default 500 sessions at batch 256; chosen by `quant finetune-search` stage 3 on "
        "2022-05-05 .. 2023-04-28, docs/operations.md); the same inputs give the same weights "
        "whatever the machine's load",
    )
    calibrate_steps: bool = Field(
        True,
        description="lower max_steps when the throughput measured at the start of the fine-tune "
        "says it would not fit in budget_s (production); the replay turns this off",
    )
    anchor: float = Field(
        0.0,
        ge=0,
        description="L2-SP weight: anchor * sum((w - w_champion)^2) is added to the loss "
        "(against forgetting); 0 turns it off",
    )
    recent_sessions: int = Field(
        250,
        ge=10,
        description="newest labelled sessions before the gate window that are trained on",
    )
    replay_sample: int = Field(
        250,
        ge=0,
        description="older sessions drawn at random (seeded by the run date) against forgetting",
    )
    lr: float = Field(1e-3, gt=0, description="learning rate (lower than from-scratch training)")
    max_epochs: int = Field(200, ge=1, description="epoch cap; the budget usually stops first")
    patience: int = Field(6, ge=1, description="epochs without validation improvement")
    seed: int = Field(0, description="seeds torch and the replay sample (plus the run date)")


class InitialSettings(Frozen):
    """Training from scratch: the first champion (the walk-forward's block fit, bounded by
    ``forecast.train.max_epochs`` and early stopping, no wall-clock budget)."""

    holdout_sessions: int = Field(
        250,
        ge=0,
        description="newest labelled sessions the FIRST champion does not train on, so the first "
        "report has an out-of-sample window (never less than the gate window)",
    )
    model: str = Field("fused", description="torch model name (models.factory.TORCH_MODELS)")


class GateSettings(Frozen):
    """Promotion gate: challenger against champion on a window neither trained on."""

    window_sessions: int = Field(
        20,
        ge=5,
        description="newest labelled sessions held out of every fine-tune and scored by the gate",
    )
    max_log_loss_increase: float = Field(
        0.0,
        ge=0,
        description="the rule: promote only if challenger log loss <= champion's + this margin",
    )
    skip_unchanged: bool = Field(
        True,
        description="a fine-tune that kept the champion's own weights in every member (no "
        "validation gain) is recorded as 'kept champion' instead of promoting an identical copy",
    )
    max_accuracy_drop: float = Field(
        1.0,
        ge=0,
        le=1,
        description="optional second clause: challenger accuracy >= champion's - this "
        "(1.0 = off, the default; 0.05 = one session in 20)",
    )


class SchedulerSettings(Frozen):
    """APScheduler 3.x: the daily pipeline after the close on XSHG trading days."""

    timezone: str = Field("Asia/Shanghai", description="exchange time zone of the run time")
    run_time: time = Field(time(15, 30), description="run time after the 15:00 close")
    misfire_grace_s: int = Field(
        6 * 3600,
        ge=60,
        description="a run missed by up to this much (machine asleep) still fires on wake-up",
    )
    catch_up_sessions: int = Field(
        20, ge=0, description="on start, run at most this many missed trading days, oldest first"
    )
    jobstore: Path | None = Field(
        None, description="SQLite job store (default: <store>.jobs.sqlite beside the store)"
    )


class PipelineConfig(Frozen):
    """The daily pipeline: ingest, fine-tune, gate, signal, backtest, report."""

    models_dir: Path | None = Field(
        None, description="weights files (default: models/ beside the store)"
    )
    reports_dir: Path = Field(Path("reports/daily"), description="daily report JSON files")
    ingest_synthetic: bool = Field(
        True, description="land the seeded SYNTHETIC market (idempotent) in the ingest step"
    )
    ingest_real: bool = Field(
        True, description="ingest data.real_data_dir when it exists (idempotent by content hash)"
    )
    use_intraday: bool = Field(
        True, description="feed data.intraday_symbol bars to the short branch when stored"
    )
    report_window: int = Field(
        250, ge=10, description="newest labelled sessions in the daily report and backtest"
    )
    min_signal_record: int = Field(
        60,
        ge=1,
        description="labelled published signals needed before the report scores the live record "
        "instead of the serving model's held-out window",
    )
    headline_min_sessions: int = Field(
        100,
        ge=2,
        description="scored sessions the daily headline needs before it states an accuracy and "
        "interval; below this it says 'too few sessions to judge'",
    )
    threads: int = Field(1, ge=1, description="torch CPU threads of the pipeline process")
    finetune: FinetuneSettings = FinetuneSettings()
    initial: InitialSettings = InitialSettings()
    gate: GateSettings = GateSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
