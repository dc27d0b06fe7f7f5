"""A training function that does nothing but report one metric (for ``overhead.py``)."""

from __future__ import annotations

from typing import Any


def train(params: dict[str, Any], ctx: Any) -> None:
    ctx.report(step=1, score=params["x"])
