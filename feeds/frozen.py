"""The one base class of every configuration section: frozen, unknown keys rejected.

It lives in ``feeds`` because that package is the bottom of the import order: ``models``,
``backtest`` and ``quant`` may all import it, and it imports nothing of theirs.  A key that is
removed or misspelt in a user's TOML fails validation with the key named (``extra="forbid"``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable, strict pydantic model: subclass it for every configuration section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
