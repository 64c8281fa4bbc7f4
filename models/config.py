"""The ``forecast`` section of the configuration tree: features, model, training, evaluation.

Frozen and strict like every other section (unknown keys are rejected).  ``FeatureSpec`` is the
part a checkpoint must agree with: a model trained on one window shape cannot read another.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureSpec(_Frozen):
    """Shape and meaning of the model inputs; stored in every checkpoint and checked on load."""

    daily_window: int = Field(default=20, ge=2, description="L: daily tokens (sessions) per sample")
    intraday_sessions: int = Field(
        default=1, ge=1, description="K: sessions of intraday bars per sample"
    )
    intraday_minutes: int = Field(
        default=5, description="bar length of the intraday tokens (1 or 5)"
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


class ModelSettings(_Frozen):
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


class TrainSettings(_Frozen):
    """The one training loop shared by every torch model."""

    seed: int = Field(default=0, description="seeds torch and the shuffling of batches")
    max_epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-3, ge=0)
    patience: int = Field(default=4, ge=1, description="epochs without validation improvement")
    val_fraction: float = Field(
        default=0.15,
        gt=0.0,
        lt=0.5,
        description="chronological tail of the training window for stopping",
    )
    budget_s: float | None = Field(
        default=None, gt=0, description="optional wall-clock budget per fit"
    )


class EvalSettings(_Frozen):
    """Walk-forward evaluation."""

    retrain_every: int = Field(default=60, ge=1, description="sessions between retrains")
    warm_start: bool = Field(
        default=True, description="each retrain starts from the previous window's weights"
    )
    warm_epochs: int = Field(default=3, ge=1, description="max epochs of a warm-started retrain")
    logistic_lags: int = Field(
        default=2, ge=1, description="daily tokens fed to logistic regression"
    )
    logistic_c: float = Field(default=0.1, gt=0, description="inverse L2 strength of the logistic")
    ablation_end: str = Field(
        default="2019-10-31", description="end of the span where every session has intraday bars"
    )


class ForecastConfig(_Frozen):
    """Everything the forecaster needs, passed explicitly (no globals)."""

    features: FeatureSpec = FeatureSpec()
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    evaluation: EvalSettings = EvalSettings()
