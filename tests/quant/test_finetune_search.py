"""The fine-tune search on a tiny synthetic span: never updating is a choosable policy, the
choice is the lowest log loss, and the same inputs give the same scores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from quant.config import QuantConfig
from quant.finetune_search import NO_UPDATE, SPACE, choose, markdown, search


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
    assert doc["chosen"] == choose(scores, ("steps=2", "steps=4"))
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


def _s(acc: float, ll: float) -> dict[str, float]:
    return {"accuracy": acc, "log_loss": ll}


def test_choose_applies_the_bar_against_never_updating() -> None:
    frozen = _s(0.500, 0.7000)
    # better log loss but 0.6 points less accurate: not eligible; 0.4 points less: eligible
    scores = {NO_UPDATE: frozen, "a": _s(0.494, 0.6900), "b": _s(0.496, 0.6990)}
    assert choose(scores, ("a", "b")) == "b"
    # the lowest log loss among the eligible ones
    scores["c"] = _s(0.520, 0.6950)
    assert choose(scores, ("a", "b", "c")) == "c"
    # more accurate but worse log loss is not eligible either; nothing eligible -> frozen
    only = {NO_UPDATE: frozen, "d": _s(0.600, 0.7001), "a": scores["a"]}
    assert choose(only, ("d", "a")) == NO_UPDATE


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
