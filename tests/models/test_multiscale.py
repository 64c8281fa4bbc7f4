"""The attention model: masking, the explicit gate fall-back, the constraint, the head counts."""

from __future__ import annotations

import torch

from models.factory import build, model_config
from models.features import TOKEN_FEATURES
from models.multiscale import MultiScaleConfig, MultiScaleForecaster, attention_concentration
from tests.models.conftest import small_config


def _batch(b: int = 6, has: list[bool] | None = None) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    xd, xi = (
        torch.randn(b, 10, len(TOKEN_FEATURES), generator=g),
        torch.randn(b, 48, 5, generator=g),
    )
    hi = torch.tensor(has if has is not None else [True, False] * (b // 2))
    mi = hi[:, None].expand(b, 48).clone()
    mi[0, 40:] = False  # a partial session
    return xd, xi, mi, hi


def _model(name: str = "fused") -> MultiScaleForecaster:
    cfg = small_config()
    m = build(model_config(name, cfg.features, cfg.model))
    assert isinstance(m, MultiScaleForecaster)
    return m.eval()


def test_daily_branch_has_half_the_heads_of_the_intraday_branch() -> None:
    m = _model()
    assert m.long.attn.heads * 2 == m.short.attn.heads


def test_without_intraday_bars_the_gate_is_zero_and_the_intraday_input_is_ignored() -> None:
    m = _model()
    xd, xi, mi, hi = _batch()
    with torch.no_grad():
        logit, gate, conc = m(xd, xi, mi, hi)
        noisy = xi + 100.0 * torch.randn_like(xi)  # garbage where bars are absent
        logit2, _, _ = m(xd, noisy, mi, hi)
    assert torch.all(gate[~hi] == 0.0) and torch.all(gate[hi] > 0.0)
    assert torch.equal(logit[~hi], logit2[~hi])
    assert torch.all(conc[~hi] == 0.0)
    assert torch.isfinite(logit).all()


def test_masked_intraday_tokens_do_not_change_the_forecast() -> None:
    m = _model()
    xd, xi, mi, hi = _batch()
    xi2 = xi.clone()
    xi2[0, 40:] = 55.0  # absent bars of the partial session
    with torch.no_grad():
        assert torch.allclose(m(xd, xi, mi, hi)[0], m(xd, xi2, mi, hi)[0])


def test_daily_only_gate_is_zero_and_intraday_only_uses_intraday_where_present() -> None:
    xd, xi, mi, hi = _batch()
    with torch.no_grad():
        assert torch.all(_model("daily_only")(xd, xi, mi, hi)[1] == 0.0)
        g = _model("intraday_only")(xd, xi, mi, hi)[1]
    assert torch.equal(g, hi.float())


def test_concentration_is_zero_for_uniform_and_one_for_one_hot_attention() -> None:
    mask = torch.ones(1, 4, dtype=torch.bool)
    uniform = torch.full((1, 2, 4, 4), 0.25)
    one_hot = torch.zeros(1, 2, 4, 4)
    one_hot[..., 0] = 1.0
    assert attention_concentration(uniform, mask).item() == 0.0
    assert abs(attention_concentration(one_hot, mask).item() - 1.0) < 1e-6


def test_constraint_strength_comes_from_the_config_and_unconstrained_has_none() -> None:
    xd, xi, mi, hi = _batch()
    constrained, free = _model("fused"), _model("fused_unconstrained")
    assert free.cfg.attn_entropy_penalty == 0.0 and free.cfg.gate_penalty == 0.0
    _, g, c = constrained(xd, xi, mi, hi)
    assert constrained.penalty(g, c, hi).item() > 0.0
    assert free.penalty(g, c, hi).item() == 0.0
    stronger = MultiScaleForecaster(
        MultiScaleConfig(**{**constrained.cfg.__dict__, "gate_penalty": 1.0})
    )
    assert stronger.penalty(g, c, hi) > constrained.penalty(g, c, hi)


def test_serving_kernel_equals_the_explicit_weights_path_and_hooks_see_weights() -> None:
    m = _model()
    xd, xi, mi, hi = _batch()
    seen: list[torch.Tensor] = []
    with torch.no_grad():
        fast = m(xd, xi, mi, hi)[0]  # fused scaled_dot_product_attention
        h = m.short.attn.register_forward_hook(lambda _m, _a, out: seen.append(out[1]))
        try:
            explicit = m(xd, xi, mi, hi)[0]  # an observer: weights are materialised
        finally:
            h.remove()
    assert torch.allclose(fast, explicit, atol=1e-6)
    assert seen[0].shape == (int(hi.sum()), m.short.attn.heads, 48, 48)
    assert torch.allclose(seen[0].sum(-1), torch.ones(()))
