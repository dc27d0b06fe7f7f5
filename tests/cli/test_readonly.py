"""The read-only commands never import Ray, and every command that names a sweep finds it by the
same rule (``sweeper._layout.find_sweep``).

The commands run on copies of a folder a real sweep wrote (the session's ``talking_sweep``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from sweeper.cli import main

TRAIN = "def train(params, ctx):\n    return {'loss': 1.0}\n"
SPEC = """\
name: readonly
framework: python
entrypoint: train.py:train
search: {{{search}, metric: loss, mode: min}}
parameters:
  lr: {{{lr}}}
  layers: {{int: [1, 3]}}
  epochs: 5
"""
SPECS = {  # a grid takes no continuous range
    "grid": SPEC.format(search="method: grid", lr="choice: [0.1, 0.01]"),
    "random": SPEC.format(
        search="method: random, trials: 4, seed: 3", lr="loguniform: [0.0001, 0.1]"
    ),
    "optuna": SPEC.format(search="method: optuna, trials: 4", lr="loguniform: [0.0001, 0.1]"),
}
MANIFEST = """\
name: tf_net
version: "1.0"
gpus: 0
cpus: 1
memory: 1Gb
learners: 1
framework:
  name: tensorflow
  version: "1.5.0-py3"
  command: python3 net.py --learningRate 0.001
"""
# Runs each command as the console script does, in one interpreter: sys.modules only grows, so
# the Ray modules loaded after a command are those it (or one before it) imported.
PROBE = """\
import json, sys

def ray_modules():
    return sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))

report = {"import": {"exit": 0, "ray": []}}
from sweeper.cli import main
report["import"]["ray"] = ray_modules()
for label, args in json.loads(sys.argv[1]):
    code = 0
    try:
        main(args, prog_name="sweeper")
    except SystemExit as exit:
        code = exit.code
    report[label] = {"exit": code, "ray": ray_modules()}
with open(sys.argv[2], "w") as out:
    json.dump(report, out)
"""
COMMANDS = ("list", "status", "show", "export", "logs", "plot", "stop", "sync", "validate")
COMMANDS += ("plan", "convert", "run", "resume", "ui")
HELP = ["--help", *[f"{command} --help" for command in COMMANDS]]
# What the probe runs: the import of sweeper.cli, each read-only command, each --help.
LABELS = [
    "import",
    "list",
    "status",
    "show",
    "export csv",
    "export parquet",
    "logs",
    "logs --follow",
    "plot",
    "stop",
    "sync",
    "validate",
    "plan grid",
    "plan random",
    "plan optuna",
    "convert",
    *HELP,
]


@pytest.fixture(scope="module")
def probe(talking_sweep, tmp_path_factory) -> dict[str, dict]:
    """Every read-only command, then ``--help`` of every command, run in a fresh interpreter;
    for each, its exit status and the ``ray`` modules loaded once it returned."""
    folder = tmp_path_factory.mktemp("readonly")
    results = folder / "results"
    finished = talking_sweep.result.sweep_dir
    shutil.copytree(finished, results / finished.name)
    # A sweep whose driver is alive (this process) for `sweeper stop`.
    running = results / "running-sweep"
    shutil.copytree(finished, running)
    state = json.loads((running / "state.json").read_text())
    state.update(sweep=running.name, status="running", pid=os.getpid(), host=socket.gethostname())
    (running / "state.json").write_text(json.dumps(state))
    (folder / "train.py").write_text(TRAIN, encoding="utf-8")
    for name, text in SPECS.items():
        (folder / f"{name}.yml").write_text(text, encoding="utf-8")
    (folder / "manifest.yml").write_text(MANIFEST, encoding="utf-8")
    sweep = finished.name
    commands = [
        ("list", ["list"]),
        ("status", ["status", sweep]),
        ("show", ["show", sweep]),
        ("export csv", ["export", sweep, "-o", str(folder / "table.csv")]),
        ("export parquet", ["export", sweep, "-o", str(folder / "table.parquet")]),
        ("logs", ["logs", sweep, "3"]),
        ("logs --follow", ["logs", sweep, "3", "--follow", "-n", "1"]),
        ("plot", ["plot", sweep, "--no-mlflow", "-o", str(folder / "plots")]),
        ("stop", ["stop", running.name, "--no-wait"]),
        ("sync", ["sync", sweep]),
        ("validate", ["validate", "grid.yml"]),
        ("plan grid", ["plan", "grid.yml"]),
        ("plan random", ["plan", "random.yml"]),
        ("plan optuna", ["plan", "optuna.yml"]),
        ("convert", ["convert", "manifest.yml", "-o", str(folder / "converted.yml")]),
        *[(label, label.split()) for label in HELP],
    ]
    assert [label for label, _ in commands] == LABELS[1:]
    env = {
        **os.environ,
        "SWEEPER_RESULTS_DIR": str(results),
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
    }
    report = folder / "report.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands), str(report)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and report.is_file(), done.stdout + done.stderr
    found = json.loads(report.read_text())
    assert (running / "stop-requested").is_file()  # stop did its work
    assert (folder / "table.parquet").is_file() and (folder / "converted.yml").is_file()
    assert sorted((folder / "plots").glob("*.png")), done.stdout
    return found


@pytest.mark.parametrize("label", LABELS)
def test_a_read_only_command_never_imports_ray(probe, label):
    assert probe[label] == {"exit": 0, "ray": []}


def test_sync_refuses_a_plain_folder_as_the_other_commands_do(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    results = tmp_path / "results"
    runner = CliRunner(env={"SWEEPER_RESULTS_DIR": str(results)})
    error = (
        f"error: sweep must be a sweep folder, id, id prefix or spec name, got {str(plain)!r}; "
        f"sweeps are folders under {results}\n"
    )
    for command in (["sync"], ["status"], ["show"], ["export"], ["plot"], ["stop"], ["resume"]):
        done = runner.invoke(main, [*command, str(plain)])
        assert (done.exit_code, done.stdout, done.stderr) == (1, "", error), command
    done = runner.invoke(main, ["logs", str(plain), "1"])
    assert (done.exit_code, done.stderr) == (1, error)
    assert list(plain.iterdir()) == []  # sync wrote nothing there


def test_sync_of_a_sweep_by_id_and_by_folder(talking_sweep, tmp_path):
    results = tmp_path / "results"
    sweep_dir = results / talking_sweep.result.sweep
    shutil.copytree(talking_sweep.result.sweep_dir, sweep_dir)
    runner = CliRunner(env={"SWEEPER_RESULTS_DIR": str(results)})
    for ref in (sweep_dir.name, str(sweep_dir)):
        done = runner.invoke(main, ["sync", ref])
        assert (done.exit_code, done.stdout) == (
            0,
            f"{sweep_dir.name}: every upload verified (0 files now)\n",
        )


def test_the_read_only_modules_import_no_ray_at_module_level():
    # Belt and braces for code paths the probe above does not take (a running sweep, errors).
    code = (
        "import sys, sweeper.cli._main, sweeper.cli._inspect, sweeper.cli._plan, "
        "sweeper.cli._plot, sweeper.history, sweeper.plots, sweeper.results, sweeper._format; "
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_the_read_only_commands_answer_without_pandas(talking_sweep, tmp_path):
    """``list``, ``status``, ``show`` and ``logs`` need no DataFrame: pandas is not imported."""
    results = tmp_path / "results"
    shutil.copytree(talking_sweep.result.sweep_dir, results / talking_sweep.result.sweep)
    sweep = talking_sweep.result.sweep
    code = (
        "import sys; from sweeper.cli import main\n"
        f"for args in (['list'], ['status', {sweep!r}], ['show', {sweep!r}], "
        f"['logs', {sweep!r}, '1']):\n"
        "    try: main(args)\n"
        "    except SystemExit as exit: assert exit.code == 0, (args, exit.code)\n"
        "print('pandas' in sys.modules, file=sys.stderr)"
    )
    env = {**os.environ, "SWEEPER_RESULTS_DIR": str(results)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "False\n"), done.stderr
