"""Learning-rate schedules: warm-up, decay shapes, and a state that resumes (and stretches with more epochs)."""

from __future__ import annotations

import pytest
import torch

from medseg_masksup.training.schedule import WarmupDecay, build_lr_schedule


def _lrs(kind: str, epochs: int = 10, steps: int = 5, warmup: int = 2) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_lr_schedule(opt, kind, epochs, steps, warmup)
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("kind", ["constant", "cosine", "poly"])
def test_warmup_rises_linearly_then_the_schedule_takes_over(kind):
    lrs = _lrs(kind)
    warm = lrs[:10]
    assert all(a < b for a, b in zip(warm, warm[1:])) and warm[-1] < 1.0
    assert lrs[10] == pytest.approx(1.0)
    if kind == "constant":
        assert all(v == pytest.approx(1.0) for v in lrs[10:])
    else:
        tail = lrs[10:]
        assert all(a >= b for a, b in zip(tail, tail[1:])) and tail[-1] < 0.05


def test_cosine_is_half_way_at_the_middle_of_the_decay():
    f = WarmupDecay("cosine", warmup_steps=0, total_steps=100)
    assert f(50) == pytest.approx(0.5) and f(0) == pytest.approx(1.0) and f(100) == pytest.approx(0.0, abs=1e-12)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        WarmupDecay("step", 0, 10)
    with pytest.raises(ValueError, match="warmup"):
        WarmupDecay("cosine", 11, 10)


def test_state_resumes_the_step_and_a_longer_run_stretches_the_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_lr_schedule(opt, "cosine", epochs=10, steps_per_epoch=1)
    for _ in range(5):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert "lr_lambdas" not in state  # plain types only: weights_only-loadable, schedule comes from the settings
    torch.save(state, "/dev/null")
    longer = build_lr_schedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), "cosine", epochs=20,
                               steps_per_epoch=1)
    longer.load_state_dict(state)
    assert longer.last_epoch == 5
    assert longer.lr_lambdas[0].total_steps == 20
