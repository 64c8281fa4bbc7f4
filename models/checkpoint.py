"""Checkpoint format: model config, feature spec, normalisation statistics and weights.

One file written by ``torch.save`` and read with ``weights_only=True`` (no pickled code).  A
SHA-256 digest over the header and every tensor detects truncated or edited files; ``load``
compares the stored feature spec with the one the caller expects and names every difference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from models.config import FeatureSpec
from models.factory import ModelConfig, build, config_from_dict, config_to_dict
from models.normalise import NormStats

FORMAT = "csi300-forecaster"
VERSION = 1


class CheckpointError(ValueError):
    """The file is not a readable, intact forecaster checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was trained for another configuration than the caller's."""


@dataclass(frozen=True)
class Checkpoint:
    name: str  # model name, e.g. "fused"
    model_config: ModelConfig
    spec: FeatureSpec
    norm: NormStats
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. trained_through session, metrics

    def model(self) -> nn.Module:
        """The model rebuilt from its config with the stored weights, in eval mode."""
        m = build(self.model_config)
        m.load_state_dict(self.state_dict)
        return m.eval()


def _digest(header: dict[str, Any], state: dict[str, Tensor]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` (parents created) and return the path."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "name": ckpt.name,
        "model_config": config_to_dict(ckpt.model_config),
        "feature_spec": ckpt.spec.model_dump(),
        "norm": ckpt.norm.as_dict(),
        "meta": ckpt.meta,
    }
    state = {k: v.detach().cpu() for k, v in ckpt.state_dict.items()}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"header": header, "state_dict": state, "sha256": _digest(header, state)}, p)
    return p


def load(path: str | Path, *, expect_spec: FeatureSpec | None = None) -> Checkpoint:
    """Read a checkpoint; ``CheckpointError`` if corrupt, ``CheckpointMismatchError`` if its
    feature spec differs from ``expect_spec``."""
    p = Path(path)
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises several types for damaged zip/pickle data
        raise CheckpointError(f"{p}: not a readable checkpoint ({exc})") from exc
    if not isinstance(raw, dict) or not {"header", "state_dict", "sha256"} <= set(raw):
        raise CheckpointError(f"{p}: not a forecaster checkpoint (missing header or weights)")
    header, state = raw["header"], raw["state_dict"]
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise CheckpointError(f"{p}: format {header.get('format')} v{header.get('version')}")
    if _digest(header, state) != raw["sha256"]:
        raise CheckpointError(f"{p}: checksum mismatch, the file was altered or damaged")
    spec = FeatureSpec.model_validate(header["feature_spec"])
    if expect_spec is not None and spec != expect_spec:
        got, want = spec.model_dump(), expect_spec.model_dump()
        diff = ", ".join(
            f"{k}: checkpoint {got[k]} != expected {want[k]}" for k in want if got.get(k) != want[k]
        )
        raise CheckpointMismatchError(f"{p}: trained for another feature spec ({diff})")
    ckpt = Checkpoint(
        name=header["name"],
        model_config=config_from_dict(header["model_config"]),
        spec=spec,
        norm=NormStats.from_dict(header["norm"]),
        state_dict=state,
        meta=header["meta"],
    )
    try:
        ckpt.model()
    except RuntimeError as exc:  # weights of another shape than the config says
        raise CheckpointError(f"{p}: weights do not fit the stored config ({exc})") from exc
    return ckpt
