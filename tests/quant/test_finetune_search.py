"""The fine-tune search on a tiny synthetic span: never updating is a choosable policy, the
choice is the lowest log loss, and the same inputs give the same scores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from quant.config import QuantConfig
from quant.finetune_search import NO_UPDATE, SPACE, markdown, search


def test_search_chooses_among_the_candidates_and_never_updating(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path, read_only=True)
    try:
        run = lambda: search(  # noqa: E731
            con,
            cfg,
            SYNTHETIC_SYMBOL,
            date(2022, 12, 19),
            date(2022, 12, 30),
            every=5,
            candidates=("steps=2", "steps=4"),
        )
        doc, again = run(), run()
    finally:
        con.close()
    scores = doc["scores"]
    assert set(scores) == {"steps=2", "steps=4", NO_UPDATE}
    best = min(s["log_loss"] for s in scores.values())
    assert scores[doc["chosen"]]["log_loss"] == best
    if scores[NO_UPDATE]["log_loss"] == best:  # a tie goes to the simpler policy
        assert doc["chosen"] == NO_UPDATE
    assert doc["run_dates"] == 2 and all(s["n"] == 9 for s in scores.values())
    for c in ("steps=2", "steps=4"):
        vs = scores[c]["vs_frozen"]
        assert vs["log_loss_diff"] == pytest.approx(
            scores[c]["log_loss"] - scores[NO_UPDATE]["log_loss"]
        )
    assert {c: s["log_loss"] for c, s in again["scores"].items()} == {
        c: s["log_loss"] for c, s in scores.items()
    }  # fixed step budgets: reproducible
    assert f"chosen: {doc['chosen']}" in markdown(doc)


def test_unknown_candidate_is_refused(make_env: Callable[..., QuantConfig]) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path, read_only=True)
    try:
        with pytest.raises(ValueError, match="unknown candidates"):
            search(
                con,
                cfg,
                SYNTHETIC_SYMBOL,
                date(2022, 12, 19),
                date(2022, 12, 30),
                candidates=("nope",),
            )
    finally:
        con.close()
    assert "steps=4" in SPACE
