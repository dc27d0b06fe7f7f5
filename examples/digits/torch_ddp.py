"""The digits MLP trained by several learners at once with PyTorch's DistributedDataParallel.

With ``resources.learners: 2`` sweeper runs ``train(params, ctx)`` in two processes, with
torch.distributed's process group already set up (gloo on CPUs, nccl on GPUs). Each learner
trains on its own shard of the data; DDP averages the gradients, so the learners' models stay
the same. Only rank 0's ``ctx.report`` reaches the sweep, and only rank 0 saves the model.
"""

from __future__ import annotations

import math

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def _data() -> tuple[torch.Tensor, ...]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return x_train, x_val, y_train, y_val


def _checksum(model: nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def train(params: dict, ctx) -> None:
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x_train, x_val, y_train, y_val = (t.to(device) for t in _data())
    # This learner's shard: every world_size-th example from its rank on.
    x_mine, y_mine = x_train[ctx.rank :: ctx.world_size], y_train[ctx.rank :: ctx.world_size]
    net = nn.Sequential(nn.Linear(64, params["hidden"]), nn.ReLU(), nn.Linear(params["hidden"], 10))
    net = net.to(device)
    # DDP copies rank 0's weights to every learner, then all-reduces the gradients.
    model = DistributedDataParallel(net) if ctx.world_size > 1 else net
    optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batch = int(params.get("batch_size", 32))
    # Every learner takes the same number of steps (a learner with one more would wait forever
    # in its all-reduce): as many as the smallest shard holds.
    steps = math.ceil((len(x_train) // ctx.world_size) / batch)
    generator = torch.Generator().manual_seed(ctx.rank)
    for epoch in range(1, params["epochs"] + 1):
        model.train()
        order = torch.randperm(len(x_mine), generator=generator).to(device)
        total = 0.0
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x_mine[idx]), y_mine[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            logits = net(x_val)
            val_accuracy = (logits.argmax(1) == y_val).float().mean().item()
        # Each learner's own log (trial.log, learner-2.log, ...) shows what it trained.
        print(f"learner {ctx.rank}: epoch {epoch} steps {steps} checksum {_checksum(net):.9f}")
        ctx.report(step=epoch, loss=total / steps, val_accuracy=val_accuracy)
    if ctx.rank == 0:
        torch.save(net.state_dict(), ctx.output_dir / "model.pt")
