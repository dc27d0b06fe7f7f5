"""A small PyTorch MLP on scikit-learn's bundled digits (8x8 images, 10 classes).

sweeper calls ``train(params, ctx)`` once per trial; ``ctx.report`` records each epoch.
"""

from __future__ import annotations

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


def train(params: dict, ctx) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x_train, x_val, y_train, y_val = (t.to(device) for t in _data())
    model = nn.Sequential(
        nn.Linear(64, params["hidden"]),
        nn.ReLU(),
        nn.Dropout(params["dropout"]),
        nn.Linear(params["hidden"], 10),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    loss_fn = nn.CrossEntropyLoss()
    batch = int(params.get("batch_size", 64))
    for epoch in range(1, params["epochs"] + 1):
        model.train()
        order = torch.randperm(len(x_train), device=device)
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = loss_fn(logits, y_val).item()
            val_accuracy = (logits.argmax(1) == y_val).float().mean().item()
        ctx.report(
            step=epoch,
            loss=total / len(x_train),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
        )
    torch.save(model.state_dict(), ctx.output_dir / "model.pt")
