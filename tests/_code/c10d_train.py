"""A training program in the shape of FfDL's torch.distributed (c10d) examples, for the tests.

It reads only what FfDL's learners were given: NUM_LEARNERS, LEARNER_ID, TRAINING_ID, GPU_COUNT,
RESULT_DIR, LOG_DIR, CHECKPOINT_DIR and the /job volume the learners share, where the process
group meets (init_method file:///job/<training id>). Gradients are averaged by hand with
all_reduce, as those examples did. Learner 1 writes EMetrics to $LOG_DIR and a checkpoint each
epoch; every learner resumes from it. Each learner records what it did in
$RESULT_DIR/learner-<id>.jsonl and its pid in /job/pid-<id>-<attempt>.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()

size = int(os.environ["NUM_LEARNERS"])
learner = int(os.environ["LEARNER_ID"])
rank = learner - 1
attempt = len(list(Path("/job").glob(f"pid-{learner}-*"))) + 1
Path(f"/job/pid-{learner}-{os.getpid()}").write_text(str(os.getpid()))
dist.init_process_group(
    "gloo", init_method="file:///job/" + os.environ["TRAINING_ID"], world_size=size, rank=rank
)

digits = load_digits()
x = torch.tensor(digits.data / 16.0, dtype=torch.float32)[rank::size]
y = torch.tensor(digits.target, dtype=torch.long)[rank::size]
torch.manual_seed(0)  # the same first weights on every learner
model = nn.Linear(64, 10)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
checkpoint = Path(os.environ["CHECKPOINT_DIR"]) / "model.pt"
first = 1
if checkpoint.exists():
    saved = torch.load(checkpoint)
    model.load_state_dict(saved["model"])
    first = saved["epoch"] + 1
record = Path(os.environ["RESULT_DIR"]) / f"learner-{learner}.jsonl"
emetrics = Path(os.environ["LOG_DIR"]) / "evaluation-metrics.txt"
seen = {k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                                        "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GPU_COUNT")}  # fmt: skip
for epoch in range(first, args.epochs + 1):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    for p in model.parameters():  # FfDL's average_gradients
        dist.all_reduce(p.grad.data, op=dist.ReduceOp.SUM)
        p.grad.data /= size
    optimizer.step()
    accuracy = float((model(x).argmax(1) == y).float().mean())
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    with record.open("a") as out:
        out.write(json.dumps({"epoch": epoch, "checksum": checksum, "attempt": attempt,
                              "pid": os.getpid(), "env": seen}) + "\n")  # fmt: skip
    if learner == 1:
        torch.save({"model": model.state_dict(), "epoch": epoch}, checkpoint)
        line = {"meta": {"rindex": epoch}, "grouplabel": "test",
                "etimes": {"epoch": {"type": "INT", "value": epoch}},
                "values": {"accuracy": {"type": "FLOAT", "value": accuracy}}}  # fmt: skip
        with emetrics.open("a") as out:
            out.write(json.dumps(line) + "\n")
    print(f"learner {learner} epoch {epoch} loss {loss.item():.4f}", flush=True)
    time.sleep(args.sleep)
dist.destroy_process_group()
