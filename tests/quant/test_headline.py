"""The daily headline scores the serving model only on sessions that neither trained nor
selected it, states n and the window, and refuses to judge on too few sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from feeds.store import open_store
from quant import registry
from quant.config import QuantConfig
from quant.pipeline import run_daily
from quant.pipeline_steps import selected_through


def test_headline_excludes_the_gate_window_that_selected_the_champion(
    make_env: Callable[..., QuantConfig],
) -> None:
    always_promote = {"max_log_loss_increase": 10.0, "skip_unchanged": False}
    cfg = make_env(gate=always_promote, min_signal_record=1000)  # score the serving model
    con = open_store(cfg.store.path)
    first = run_daily(con, cfg, date(2022, 12, 27))
    assert first.status == "done", first.error
    b0 = first.steps["backtest"]["detail"]
    champ0 = registry.champion(con)
    assert champ0 is not None
    # a first model promoted with no champion to beat: only its training window is excluded
    assert (
        b0["excluded_through"]
        == champ0.train_end.isoformat()
        == selected_through(con, champ0).isoformat()
    )
    assert b0["n_sessions"] == 40 and date.fromisoformat(b0["first_session"]) > champ0.train_end

    r = run_daily(con, cfg, date(2022, 12, 28))  # a fine-tune beats the champion on the window
    assert r.status == "done", r.error
    gate_window = r.steps["gate"]["detail"]["window"]
    assert (
        r.steps["gate"]["detail"]["promoted"]
        and r.steps["finetune"]["detail"]["kind"] == "finetune"
    )
    b = r.steps["backtest"]["detail"]
    champ = registry.champion(con)
    assert champ is not None and champ.train_end.isoformat() < gate_window[0]
    assert b["excluded_through"] == gate_window[1]  # the window that selected it is not scored
    assert b["n_sessions"] == 0  # every labelled session so far trained or selected it
    assert "too few sessions to judge: n=0 < 20" in r.headline
    assert f"excluding sessions through {gate_window[1]}" in r.headline
    con.close()


def test_a_twenty_session_headline_is_too_few_to_judge(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env(
        headline_min_sessions=100,
        min_signal_record=1000,
        initial={"holdout_sessions": 20},
        gate={"window_sessions": 20},
    )
    con = open_store(cfg.store.path)
    r = run_daily(con, cfg, date(2022, 12, 29))
    assert r.status == "done", r.error
    b = r.steps["backtest"]["detail"]
    assert b["n_sessions"] == 20
    assert "too few sessions to judge: n=20 < 100" in r.headline
    assert f"{b['first_session']}..{b['last_session']}" in r.headline  # states the window
    assert "Wilson" not in r.headline  # no interval over 20 sessions
    con.close()
