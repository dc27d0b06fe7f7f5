"""A sweep whose results folder fills up: it ends within seconds on one line, and resumes.

The folder is a real filesystem that fills (a tmpfs of a few MB, mounted in a mount namespace
of the test's own), not a simulated error: trials, sweeper's journal, Optuna's journal and
MLflow's SQLite store all run out of space as they would on a full disk.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mount_namespace

pytestmark = [pytest.mark.slow, pytest.mark.smalldisk]

# Each trial writes 150 KB per step, 20 steps: 12 trials need ~36 MB, the disk holds 3 MB.
TRAIN = """\
import os


def train(params, ctx):
    for step in range(20):
        with open(os.path.join(ctx.output_dir, f"blob{step}.bin"), "wb") as handle:
            handle.write(os.urandom(150_000))
        ctx.report(loss=1.0 / (step + 1 + params["x"]))
"""
SEARCHES = {
    "grid": "search: {method: grid, metric: loss, mode: min}\nparameters:\n"
    "  x: {choice: [1, 2, 3, 4, 5, 6, 7, 8]}\n",
    "optuna": "search: {method: optuna, metric: loss, mode: min, trials: 8, seed: 1}\n"
    "parameters:\n  x: {uniform: [0, 8]}\n",
}
# Run in the namespace: mount the small disk, run the sweep on it, keep what it printed and
# left, then give the disk room and resume.
SCRIPT = """\
set -u
mount -t tmpfs -o size=3m tmpfs disk
"$PY" -m sweeper run experiment.yml > run.out 2> run.err
echo $? > run.rc
cp -a disk after-run
mount -o remount,size=100m disk
sweep=$(ls disk/results)
"$PY" -m sweeper resume --retry-failed "disk/results/$sweep" > resume.out 2> resume.err
echo $? > resume.rc
"$PY" -m sweeper status "disk/results/$sweep" > status.out 2>&1
cp disk/results/"$sweep"/state.json final-state.json
"""


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_a_full_disk_ends_the_sweep_on_one_line_and_it_resumes(tmp_path: Path, search: str) -> None:
    prefix = mount_namespace()
    assert prefix is not None  # the smalldisk marker has checked
    (tmp_path / "disk").mkdir()
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "experiment.yml").write_text(
        "name: fulldisk\nframework: python\nentrypoint: train.py:train\n" + SEARCHES[search],
        encoding="utf-8",
    )
    (tmp_path / "sweeper.toml").write_text(
        '[results]\ndir = "disk/results"\n[mlflow]\ntracking_uri = "sqlite:///disk/mlflow.db"\n'
        "[ray]\ndashboard = false\nnum_cpus = 2\n",
        encoding="utf-8",
    )
    # Within pytest-timeout's limit: a hang is reported here, with what the sweep printed.
    subprocess.run(
        [*prefix, "bash", "-c", SCRIPT], cwd=tmp_path, timeout=280, check=True,
        env={**_environment(), "PY": sys.executable},
    )  # fmt: skip

    def read(name: str) -> str:
        return (tmp_path / name).read_text(encoding="utf-8")

    run_err = read("run.err")
    assert read("run.rc").strip() == "1", read("run.out") + run_err
    assert "Traceback" not in read("run.out") + run_err
    errors = [line for line in run_err.splitlines() if line.startswith("error:")]
    (sweep,) = (tmp_path / "after-run" / "results").iterdir()
    sweep_dir = tmp_path / "disk" / "results" / sweep.name
    # Where the disk ran out decides which file is named, and whether trials failed on it
    # (then the hint says to run them again).
    assert len(errors) == 1, run_err
    assert re.fullmatch(
        f"error: the sweep folder must be writable, got No space left on device writing "
        f"{re.escape(str(sweep_dir))}\\S*; free space or fix permissions, then: sweeper resume "
        f"(--retry-failed )?{re.escape(str(sweep_dir))}",
        errors[0],
    ), errors[0]
    # The trials were halted, not left running, and the sweep is resumable as it stands.
    left = json.loads((sweep / "state.json").read_text(encoding="utf-8"))
    assert left["status"] in ("running", "halted"), left

    assert read("resume.rc").strip() == "0", read("resume.out") + read("resume.err")
    assert "Traceback" not in read("resume.out") + read("resume.err")
    final = json.loads(read("final-state.json"))
    assert final["status"] == "completed", final
    assert "8/8 done (8 completed)" in read("status.out"), read("status.out")


def _environment() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPER_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env
