"""The ``forecast`` section of the configuration tree: features, model, training, evaluation.

Frozen and strict like every other section (unknown keys are rejected).  ``FeatureSpec`` is the
part a checkpoint must agree with: a model trained on one window shape cannot read another.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from feeds.frozen import Frozen


class FeatureSpec(Frozen):
    """Shape and meaning of the model inputs; stored in every checkpoint and checked on load."""

    daily_window: int = Field(default=20, ge=2, description="L: daily tokens (sessions) per sample")
    intraday_sessions: int = Field(
        default=1, ge=1, description="K: sessions of intraday bars per sample"
    )
    intraday_minutes: Literal[1, 5] = Field(
        default=5,
        description="bar length of the intraday tokens in minutes (1 or 5); the one setting of "
        "the intraday frequency (the research loader, `quant evaluate` and serving read it)",
    )
    zscore_window: int = Field(
        default=20, ge=5, description="trailing sessions for the log volume/amount z-scores"
    )
    vol_window: int = Field(
        default=20, ge=2, description="trailing sessions for realised volatility"
    )
    horizon: int = Field(
        default=1, ge=1, description="label horizon: close of t+h against close of t"
    )
    use_amount: bool = Field(
        default=True,
        description="read turnover (amount_z); training sets it False for a daily series "
        "without amount on every bar (see models.features.spec_for_series), and then the "
        "amount_z token is 0 and amount is never read",
    )

    @property
    def warmup(self) -> int:
        """Sessions of history needed before the first complete daily window."""
        return self.daily_window + max(self.zscore_window - 1, self.vol_window)


class ModelSettings(Frozen):
    """Sizes and regularisation of the torch models (multi-scale attention and LSTM)."""

    d_model: int = Field(default=16, ge=4, description="token embedding width")
    short_heads: int = Field(
        default=4, ge=2, description="heads of the intraday branch; daily has half"
    )
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    attn_entropy_penalty: float = Field(
        default=0.05,
        ge=0.0,
        description="weight of the concentration penalty on short-branch attention "
        "(1 - normalised entropy); discourages fitting a few noisy intraday bars",
    )
    gate_penalty: float = Field(
        default=0.01,
        ge=0.0,
        description="weight of mean(g): intraday must earn its share of the blend",
    )
    lstm_hidden: int = Field(default=16, ge=2, description="hidden width of the LSTM baseline")
    residual_penalty: float = Field(
        default=0.01,
        ge=0.0,
        description="weight of mean(residual logit^2): how far the attention residual may move "
        "the forecast away from the linear path (the logistic regression)",
    )
    attend_len: int = Field(
        default=0,
        ge=0,
        description="daily tokens the daily branch and the LSTM read (0: all daily_window)",
    )


class TrainSettings(Frozen):
    """The one training loop shared by every torch model."""

    seed: int = Field(default=0, description="seeds torch and the shuffling of batches")
    max_epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-3, ge=0)
    patience: int = Field(default=3, ge=1, description="epochs without validation improvement")
    val_fraction: float = Field(
        default=0.15,
        gt=0.0,
        lt=0.5,
        description="chronological tail of the training window for stopping",
    )
    budget_s: float | None = Field(
        default=None, gt=0, description="optional wall-clock budget per fit"
    )


class SearchSpace(Frozen):
    """The declared hyperparameter space; ``models.selection`` draws candidates from it and
    picks one per walk-forward block on the inner validation slice only."""

    d_model: tuple[int, ...] = (8, 16)
    dropout: tuple[float, ...] = (0.1, 0.3)
    lr: tuple[float, ...] = (1e-3, 3e-3)
    weight_decay: tuple[float, ...] = (1e-3, 1e-2)
    gate_penalty: tuple[float, ...] = (0.0, 0.01, 0.1)
    attn_entropy_penalty: tuple[float, ...] = (0.0, 0.05)
    residual_penalty: tuple[float, ...] = (0.001, 0.01, 0.1)
    attend_len: tuple[int, ...] = Field(
        default=(10, 20), description="daily window L read by the daily branch / LSTM"
    )
    lstm_hidden: tuple[int, ...] = (8, 16, 32)
    logistic_lags: tuple[int, ...] = (1, 2, 5)
    logistic_c: tuple[float, ...] = (0.01, 0.1, 1.0)


class EvalSettings(Frozen):
    """Walk-forward evaluation."""

    retrain_every: int = Field(
        default=250, ge=1, description="sessions between retrains (and re-selections)"
    )
    seeds: int = Field(default=5, ge=1, description="K: seeded fits averaged per neural model")
    candidates: int = Field(
        default=3,
        ge=1,
        description="hyperparameter candidates per neural model family (the first is the "
        "configured default, the others drawn from ``search`` with a fixed seed)",
    )
    search: SearchSpace = SearchSpace()
    calibration: bool = Field(
        default=True,
        description="temperature-scale each neural ensemble on the inner validation slice",
    )
    warm_start: bool = Field(
        default=False,
        description="each retrain starts from the previous window's weights (off: fresh fits; "
        "warm 3-epoch retrains raised the attention model's log loss, docs/forecaster.md)",
    )
    warm_epochs: int = Field(default=3, ge=1, description="max epochs of a warm-started retrain")
    logistic_lags: int = Field(
        default=2, ge=1, description="daily tokens fed to logistic regression (no selection)"
    )
    logistic_c: float = Field(
        default=0.1, gt=0, description="inverse L2 strength of the logistic (no selection)"
    )
    select: bool = Field(
        default=True,
        description="choose hyperparameters per block on inner validation (False: the "
        "configured values, one candidate)",
    )
    executor: str = Field(
        default="process", pattern="^(local|process|ray)$", description="where fits run"
    )
    workers: int = Field(default=2, ge=1, description="processes (or Ray CPUs) for the fits")
    ablation_end: date = Field(
        default=date(2019, 10, 31),
        description="end of the span where every session has intraday bars",
    )


class ForecastConfig(Frozen):
    """Everything the forecaster needs, passed explicitly (no globals)."""

    features: FeatureSpec = FeatureSpec()
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    evaluation: EvalSettings = EvalSettings()
