"""What the API serves from: the current snapshot view and the current model, swapped atomically.

``ServiceState.refresh`` (run every ``reload_poll_s`` in a thread) re-opens the published snapshot
when ``feeds.snapshot.snapshot_version`` changes and loads the champion when its version changes.
Requests read ``state.view`` / ``state.model`` once and keep that reference, so a swap never
changes what an in-flight request uses; the old objects go away with their last reference.
"""

from __future__ import annotations

import copy
import logging
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import torch
from torch import nn

from feeds.snapshot import open_snapshot, snapshot_version
from models.config import FeatureSpec
from models.export import ProbabilityHead
from models.features import INTRADAY_FEATURES, Windows, slots_per_session
from models.features_fast import (
    DailyArrays,
    Sample,
    agrees_with_reference,
    batch_agrees,
    canary,
    daily_only_batch,
    sample,
)
from models.forecaster import Forecaster
from models.normalise import NormStats, apply_norm
from quant.api import champion
from quant.api.freshness import stale_runs
from quant.registry import ModelVersion
from quant.signals import Signal, latest_signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A loaded champion: the ``Forecaster`` of one version, ready for one-sample requests."""

    record: ModelVersion
    forecaster: Forecaster  # network (eval mode), feature spec and normalisation
    fast_features: bool  # numpy twin agreed with models.features on the canary
    intraday_symbol: str  # instrument whose intraday bars the model was fitted on
    scripted: Any = None  # frozen TorchScript trace returning P(up), when it matched eager
    batch_features: bool = False  # features_fast.daily_only_batch agreed with sample (canary)

    @property
    def version(self) -> str:
        return self.record.version_id

    @property
    def net(self) -> nn.Module:
        return self.forecaster.model

    @property
    def spec(self) -> FeatureSpec:
        return self.forecaster.spec

    @property
    def norm(self) -> NormStats:
        return self.forecaster.norm

    def inputs(self, s: Sample) -> tuple[np.ndarray, ...]:
        """Standardised model inputs of one sample (``models.normalise.apply_norm``)."""
        w = apply_norm(s.as_windows(), self.norm)
        return w.x_daily[0], w.x_intra[0], w.m_intra[0], np.array(s.has_intra)


Item = Sample | DailyArrays  # what a request queues: its features, or its checked daily bars


def batch_inputs(model: ServedModel, items: list[Item]) -> tuple[np.ndarray, ...]:
    """Standardised inputs of a batch (the batcher's ``prepare``), as ``model.inputs`` stacked.

    Requests with daily bars only queue their checked bars and get their features here in one
    vectorised pass (``features_fast.daily_only_batch``); the others queue their ``Sample``.
    """
    spec, B = model.spec, len(items)
    tokens = spec.intraday_sessions * slots_per_session(spec.intraday_minutes)
    daily = [i for i, x in enumerate(items) if isinstance(x, DailyArrays)]
    fixed = [(i, x) for i, x in enumerate(items) if isinstance(x, Sample)]
    x_intra = np.zeros((B, tokens, len(INTRADAY_FEATURES)), dtype=np.float32)
    m_intra = np.zeros((B, tokens), dtype=bool)
    if daily:
        got = daily_only_batch([x for x in items if isinstance(x, DailyArrays)], spec)
        x_daily = np.empty((B, *got.shape[1:]), dtype=np.float32)
        x_daily[daily] = got
    else:
        x_daily = np.empty((B, *fixed[0][1].x_daily.shape), dtype=np.float32)
    for i, s in fixed:
        x_daily[i], x_intra[i], m_intra[i] = s.x_daily, s.x_intra, s.m_intra
    w = Windows(
        sessions=np.full(B, "NaT", dtype="datetime64[D]"),
        x_daily=x_daily,
        x_intra=x_intra,
        m_intra=m_intra,
        has_intra=np.asarray(m_intra.any(axis=1)),
    )
    n = apply_norm(w, model.norm)
    return n.x_daily, n.x_intra, n.m_intra, n.has_intra


def run_forward(model: ServedModel, xs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """P(up) and gate of a stacked batch (the batcher's runner; runs on the inference thread).

    The TorchScript trace runs the whole graph in C++ without the GIL, so the event loop keeps
    parsing requests meanwhile; eager mode re-takes the GIL at every op.  The trace returns no
    gate (the API does not report it): zeros then.
    """
    with torch.inference_mode():
        tensors = [torch.from_numpy(x) for x in xs]
        if model.scripted is not None:
            p = model.scripted(*tensors).double().numpy()
            gate = np.zeros_like(p)
        else:
            logit, g, _ = model.net(*tensors)
            p, gate = torch.sigmoid(logit).double().numpy(), g.double().numpy()
    if not np.isfinite(p).all() or ((p < 0) | (p > 1)).any():
        raise ArithmeticError(f"model {model.version} produced a non-probability")
    return p, gate


def _canary_batch(m: ServedModel) -> tuple[torch.Tensor, ...]:
    """Two standardised canary samples: one with intraday bars, one without."""
    d, mm = canary(m.spec)
    with_intra = m.inputs(sample(d, mm, m.spec))
    without = m.inputs(sample(d, None, m.spec))
    return tuple(torch.from_numpy(np.stack(x)) for x in zip(with_intra, without, strict=True))


def trace(m: ServedModel) -> Any:
    """A frozen TorchScript trace of ``m`` if it reproduces eager P(up) on the canary, else None."""
    try:
        example = _canary_batch(m)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about data-dependent shapes
            traced = torch.jit.freeze(
                torch.jit.trace(ProbabilityHead(copy.deepcopy(m.net)).eval(), example)
            )
            for xs in (example, tuple(x[:1] for x in example), tuple(x[1:] for x in example)):
                eager = torch.sigmoid(m.net(*xs)[0])
                if not torch.allclose(traced(*xs), eager, atol=1e-6, rtol=1e-5):
                    log.warning(
                        "TorchScript trace of %s differs from eager; serving eager", m.version
                    )
                    return None
        return traced
    except Exception:  # any model the tracer cannot handle is served eagerly
        log.warning("TorchScript trace of %s failed; serving eager", m.version, exc_info=True)
        return None


def serve_forecaster(
    record: ModelVersion, fc: Forecaster, *, torchscript: bool = True, intraday_symbol: str
) -> ServedModel:
    """``fc`` ready to serve; ``intraday_symbol`` applies when its checkpoint names none."""
    fast = agrees_with_reference(fc.spec)
    if not fast:
        log.error(
            "numpy features differ from models.features for %s; using the slow path",
            record.version_id,
        )
    batch = fast and batch_agrees(fc.spec)
    if fast and not batch:
        log.error("batched features differ from one-sample features for %s", record.version_id)
    isym = str(fc.meta.get("intraday_symbol") or intraday_symbol)
    fc.model.eval()
    m = ServedModel(record, fc, fast, isym, batch_features=batch)
    return replace(m, scripted=trace(m)) if torchscript else m


@dataclass(frozen=True)
class SnapshotView:
    """One published snapshot, opened read-only, with the latest signals pre-rendered."""

    version: str | None
    con: duckdb.DuckDBPyConnection | None
    symbols: frozenset[str] = frozenset()
    latest: dict[str, bytes] = field(default_factory=dict)  # symbol -> JSON body
    error: str | None = None
    stale: tuple[str, ...] = ()  # late or held run dates (quant.api.freshness)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of this snapshot for one thread (DuckDB connections are not shared)."""
        if self.con is None:
            raise FileNotFoundError(self.error or "no snapshot")
        return self.con.cursor()


def signal_json(sig: Signal, snapshot: str | None) -> bytes:
    """The /latest body of ``sig`` (rendered once per snapshot)."""
    from quant.api.schemas import SignalOut

    return (
        SignalOut.model_validate({**sig.as_dict(), "snapshot_version": snapshot})
        .model_dump_json()
        .encode()
    )


def signal_model(body: bytes) -> str | None:
    """The ``model_version`` of a rendered signal body (for ``X-Model-Version``)."""
    key = b'"model_version":"'
    i = body.find(key)
    if i < 0:
        return None
    return body[i + len(key) : body.find(b'"', i + len(key))].decode()


def _open_view(store: Path) -> SnapshotView:
    version = snapshot_version(store)
    try:
        con = open_snapshot(store)
    except (FileNotFoundError, duckdb.Error) as exc:
        return SnapshotView(None, None, error=str(exc))
    ver = None if version is None else format(version & (2**64 - 1), "x")
    try:
        has = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'signals'"
        ).fetchall()[0][0]
        syms = (
            [r[0] for r in con.execute("SELECT DISTINCT symbol FROM signals").fetchall()]
            if has
            else []
        )
        latest: dict[str, bytes] = {}
        for s in syms:
            sig = latest_signal(con, s)
            if sig is not None:
                latest[s] = signal_json(sig, ver)
        stale = stale_runs(con)
    except duckdb.Error as exc:
        con.close()
        return SnapshotView(None, None, error=f"snapshot unreadable: {exc}")
    return SnapshotView(ver, con, frozenset(syms), latest, stale=stale)


class ServiceState:
    """The snapshot view and champion model the API answers from; refreshed by polling."""

    def __init__(
        self,
        store: Path,
        models_dir: Path,
        served_symbols: frozenset[str],
        *,
        torchscript: bool = True,
        intraday_symbol: str = "IF.CFE",
    ) -> None:
        self.torchscript = torchscript
        self.intraday_symbol = intraday_symbol  # config data.intraday_symbol: the pipeline's
        self.store = store
        self.models_dir = models_dir
        self.served_symbols = served_symbols
        self.view = SnapshotView(None, None, error="not loaded yet")
        self.model: ServedModel | None = None
        self.model_error: str | None = "not loaded yet"
        self.reloads = 0
        self._raw_version: int | str | None = "unset"
        # the view whose champion is being served: a published snapshot never changes, so its
        # champion pointer is read once per view, not at every poll
        self._champion_of: SnapshotView | None = None
        self._lock = threading.Lock()

    def known_symbols(self) -> frozenset[str]:
        return self.served_symbols | self.view.symbols

    def refresh(self) -> bool:
        """Re-open the snapshot and reload the champion if either changed; True if anything did."""
        with self._lock:
            changed = False
            raw = snapshot_version(self.store)
            if raw != self._raw_version or self.view.con is None:
                view = _open_view(self.store)
                if view.con is not None or self.view.con is None:
                    self.view = view
                    self._raw_version = raw
                    changed = True
            if self._champion_of is self.view:
                return changed  # this snapshot's champion is the model served
            try:
                # A cursor of its own: request threads use the same snapshot connection, and
                # one DuckDB connection must not run two queries at once.
                cur = self.view.cursor() if self.view.con is not None else None
                rec = champion.champion(cur)
                if rec is None:
                    self.model_error = "no champion model registered"
                elif self.model is None or rec.version_id != self.model.version:
                    loaded = champion.load(cur, str(self.models_dir))
                    if loaded is not None:
                        self.model = serve_forecaster(
                            *loaded,
                            torchscript=self.torchscript,
                            intraday_symbol=self.intraday_symbol,
                        )
                        self.model_error = None
                        self.reloads += 1
                        changed = True
                        log.info("serving model %s", self.model.version)
                if (
                    rec is not None
                    and self.model is not None
                    and rec.version_id == self.model.version
                ):
                    self._champion_of = self.view
            except Exception as exc:  # keep serving the previous model; readyz shows the error
                self.model_error = f"champion could not be loaded: {exc}"
                log.exception("champion reload failed")
            return changed
