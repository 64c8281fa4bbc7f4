"""Figures for notebooks: matplotlib figures built without pyplot, and PNG files as images."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure


class NotebookFigure(Figure):
    """A Figure that renders itself as PNG in Jupyter, whatever backend pyplot is set to.

    Built outside pyplot's registry, so a cell that returns one shows it exactly once.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def new_figure(width: float = 9.0, height: float = 4.0) -> NotebookFigure:
    return NotebookFigure(figsize=(width, height), layout="constrained")


@dataclass(frozen=True)
class PngImage:
    """PNG bytes that Jupyter renders as an image (an ``image/png`` output)."""

    data: bytes
    name: str = ""

    @classmethod
    def read(cls, path: Path) -> PngImage:
        return cls(path.read_bytes(), path.stem)

    def _repr_png_(self) -> bytes:
        return self.data
