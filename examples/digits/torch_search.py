"""The digits MLP for the broader searches: a conditional optimizer, two objectives (accuracy
and model size) and population-based training.

``train`` reads ``optimizer`` and, only when it is ``sgd``, ``momentum`` (absent otherwise:
``configs/digits-pytorch-pareto.yml`` makes it conditional), and reports ``val_accuracy``
with the model's size in thousands of parameters, ``params_k``, and its inference time for
the validation set, ``latency_ms``. ``train_pbt`` continues from ``ctx.load()`` and saves
each epoch with ``ctx.save``, so a population-based schedule can copy it
(``configs/digits-pytorch-pbt.yml``).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def _data(seed: int = 0) -> tuple[torch.Tensor, ...]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    return x_train, x_val, y_train, y_val


def _model(params: dict[str, Any]) -> nn.Module:
    layers: list[nn.Module] = []
    width = 64
    for _ in range(int(params.get("layers", 1))):
        layers += [nn.Linear(width, params["hidden"]), nn.ReLU()]
        width = params["hidden"]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def _optimizer(params: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    if params.get("optimizer", "adam") == "sgd":
        return torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"])
    return torch.optim.Adam(model.parameters(), lr=params["lr"])


def _epoch(model, optimizer, x_train, y_train, batch: int) -> None:
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    order = torch.randperm(len(x_train))
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        optimizer.zero_grad()
        loss_fn(model(x_train[idx]), y_train[idx]).backward()
        optimizer.step()


def _evaluate(model, x_val, y_val) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        started = time.perf_counter()
        logits = model(x_val)
        latency_ms = (time.perf_counter() - started) * 1000
    return (logits.argmax(1) == y_val).float().mean().item(), latency_ms


def train(params: dict[str, Any], ctx) -> None:
    torch.manual_seed(ctx.seed or 0)
    x_train, x_val, y_train, y_val = _data()
    model = _model(params)
    optimizer = _optimizer(params, model)
    size_k = sum(p.numel() for p in model.parameters()) / 1000
    for epoch in range(1, params["epochs"] + 1):
        _epoch(model, optimizer, x_train, y_train, int(params.get("batch_size", 64)))
        accuracy, latency_ms = _evaluate(model, x_val, y_val)
        ctx.report(step=epoch, val_accuracy=accuracy, params_k=size_k, latency_ms=latency_ms)


def train_pbt(params: dict[str, Any], ctx) -> None:
    """Train from the saved state when there is one (a copied trial's, or this trial's own),
    with this trial's current ``lr``; save every epoch."""
    torch.manual_seed(ctx.seed or 0)
    x_train, x_val, y_train, y_val = _data()
    model = _model(params)
    optimizer = _optimizer(params, model)
    state = ctx.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the copied optimizer, with this trial's lr
            group["lr"] = params["lr"]
    for epoch in range(ctx.step + 1, params["epochs"] + 1):
        _epoch(model, optimizer, x_train, y_train, int(params.get("batch_size", 64)))
        accuracy, _ = _evaluate(model, x_val, y_val)
        ctx.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
        ctx.report(step=epoch, val_accuracy=accuracy)
