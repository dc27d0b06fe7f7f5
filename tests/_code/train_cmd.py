"""A training program for the command adapter's tests: reports through the channel it is told."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--channel", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()

config = json.loads(Path("config.json").read_text())
seen = {
    "argv": sys.argv[1:],
    "config": config,
    "env": {k: v for k, v in os.environ.items() if k.startswith("SWEEPER_PARAM_")},
    "service": {
        k: os.environ.get(k)
        for k in (
            "DATA_DIR",
            "RESULT_DIR",
            "LOG_DIR",
            "CHECKPOINT_DIR",
            "JOB_STATE_DIR",
            "MODEL_DIR",
            "TRAINING_ID",
            "GPU_COUNT",
            "SUBID",
            "NUM_LEARNERS",
            "LEARNER_ID",
        )
    },
    "cwd": os.getcwd(),
    "pid": os.getpid(),
}
Path(os.environ["RESULT_DIR"], "seen.json").write_text(json.dumps(seen))

if args.x < 0:
    print(f"x is negative ({args.x}), giving up", flush=True)
    sys.exit(3)

for epoch in range(1, args.epochs + 1):
    time.sleep(args.sleep)
    with open(Path(os.environ["RESULT_DIR"], "epochs.log"), "a") as ran:
        ran.write(f"{epoch}\n")
    loss, score = 1.0 / epoch, args.x * epoch
    if args.channel == "stdout":
        print("SWEEPER_METRICS " + json.dumps({"step": epoch, "loss": loss, "score": score}))
    elif args.channel == "file":
        with open("metrics.jsonl", "a") as out:
            out.write(json.dumps({"step": epoch, "loss": loss, "score": score}) + "\n")
    elif args.channel == "emetrics":
        folder = Path(os.environ["LOG_DIR"])
        record = {
            "meta": {"training_id": os.environ["TRAINING_ID"], "time": 0, "rindex": epoch},
            "grouplabel": "test",
            "etimes": {"epoch": {"type": 2, "value": str(epoch)}},
            "values": {"score": {"type": 3, "value": str(score)}},
        }
        with open(folder / "evaluation-metrics.txt", "a") as out:
            out.write(json.dumps(record) + "\n")
    elif args.channel == "regex":
        print(f"epoch {epoch}: loss={loss:.6f} score={score:.6f}", file=sys.stderr)
    sys.stdout.flush()
