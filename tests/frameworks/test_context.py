"""TrialContext.report: steps, numbers, and the sweep metric carried forward for Tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sweeper.frameworks.context import REPORTED_KEY, TrialContext


@pytest.fixture
def reports() -> list[dict]:
    return []


@pytest.fixture
def ctx(tmp_path: Path, reports: list[dict]) -> TrialContext:
    return TrialContext(
        params={"lr": 0.1},
        trial="trial-0003",
        sweep="s",
        trial_dir=tmp_path,
        log_path=tmp_path / "trial.log",
        output_dir=tmp_path,
        checkpoint_dir=tmp_path,
        data_dir=None,
        gpu_ids=["1"],
        seed=None,
        metric="acc",
        reporter=reports.append,
    )


def test_steps_count_up_from_one_unless_given(ctx: TrialContext, reports: list[dict]) -> None:
    ctx.report(acc=0.5)
    ctx.report(acc=0.6)
    ctx.report(step=10, acc=0.7)
    ctx.report(acc=0.8)
    assert [r["step"] for r in reports] == [1, 2, 10, 11]
    assert ctx.step == 11


def test_numpy_and_integer_metrics_become_floats(ctx: TrialContext, reports: list[dict]) -> None:
    ctx.report(acc=np.float32(0.25), count=3)
    assert reports[0]["acc"] == 0.25 and isinstance(reports[0]["acc"], float)
    assert reports[0]["count"] == 3.0 and isinstance(reports[0]["count"], float)
    assert reports[0][REPORTED_KEY] == ["acc", "count"]


@pytest.mark.parametrize("value", ["high", None, [1.0], True])
def test_a_metric_must_be_a_real_number(ctx: TrialContext, value: object) -> None:
    with pytest.raises(TypeError, match=r"report\(\) metric 'acc' must be a real number"):
        ctx.report(acc=value)


@pytest.mark.parametrize("step", [-1, 1.5, "2", True])
def test_a_step_must_be_a_non_negative_integer(ctx: TrialContext, step: object) -> None:
    with pytest.raises(TypeError, match=r"report\(\) step must be a non-negative integer"):
        ctx.report(step=step, acc=1.0)


def test_the_sweep_metric_is_carried_forward_but_not_marked_reported(
    ctx: TrialContext, reports: list[dict]
) -> None:
    ctx.report(loss=2.0)  # nothing to carry yet
    ctx.report(acc=0.5, loss=1.0)
    ctx.report(loss=0.5)
    assert "acc" not in reports[0]
    assert reports[2]["acc"] == 0.5
    assert reports[2][REPORTED_KEY] == ["loss"]


def test_float32_metrics_lose_their_float64_noise(ctx: TrialContext, reports: list[dict]) -> None:
    ctx.report(acc=np.float32(0.98), loss=float(np.float32(0.1)), lr=0.1 + 1e-12, big=1e300)
    (result,) = reports
    assert result["acc"] == 0.98 and repr(result["acc"]) == "0.98"
    assert result["loss"] == 0.1
    assert result["lr"] == 0.1 + 1e-12  # a float64 value is kept as it is
    assert result["big"] == 1e300
    ctx.report(third=np.float32(1 / 3))
    assert np.float32(reports[-1]["third"]) == np.float32(1 / 3)  # still the same float32
