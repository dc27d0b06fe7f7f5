"""Screenshots, in a real headless browser, of the pages a sweep's user watches.

    python benchmarks/screenshots.py [--out DIR] [--browser chromium]

Runs a small sweep (8 Optuna trials of a python function that reports a curve, two at a time)
with the CLI, as a user would, and while it runs takes screenshots with Debian's ``chromium
--headless`` of:

1. ``sweeper dashboard``: optuna-dashboard on the running sweep's study;
2. Ray's dashboard, its Actors page (the trials' actors and their reprs);

and once it has finished:

3. MLflow's runs view, from the link ``sweeper show`` prints (``sweeper ui`` serves it).

Writes ``01-optuna-dashboard.png``, ``02-ray-actors.png`` and ``03-mlflow-runs.png`` to
``--out`` (default ``./screenshots``) and prints what each shows. Not a test: it needs a
browser (``apt-get install chromium``) and a minute or two; every server it starts listens on
127.0.0.1 and is stopped at the end. Ray's token authentication is off for this run only, so
that the browser reaches its dashboard without the token prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINABLES = ROOT / "tests" / "_code" / "trainables.py"

SPEC = f"""\
name: watched
framework: python
entrypoint: {TRAINABLES}:steps
parameters:
  x: {{uniform: [0.5, 4.0]}}
  lr: {{loguniform: [1.0e-4, 1.0e-1]}}
  epochs: 12
  sleep: 1.0
search: {{method: optuna, trials: 8, concurrency: 2, seed: 0, metric: score, mode: max}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {timeout:g} s")


def shoot(browser: str, url: str, path: Path, wait_ms: int = 12_000) -> None:
    """A screenshot of ``url`` once its scripts had ``wait_ms`` to render."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1440,1000",
                f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url,
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    print(f"wrote {path} ({path.stat().st_size // 1024} KB): {url}")


def journal_states(sweep_dir: Path) -> dict[str, str]:
    states: dict[str, str] = {}
    path = sweep_dir / "trials.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        states[entry["name"]] = entry["state"]
    return states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--browser", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="sweeper-screens-"))
    (folder / "experiment.yml").write_text(SPEC)
    ray_port, optuna_port, mlflow_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(folder / "results"),
        "SWEEPER_RAY_NUM_CPUS": "2",
        "SWEEPER_RAY_DASHBOARD_PORT": str(ray_port),
        "RAY_AUTH_MODE": "disabled",
    }

    def start(*command: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sweeper", *command], cwd=folder, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip

    servers: list[subprocess.Popen[str]] = []
    driver = start("run", "experiment.yml")
    try:
        deadline = time.time() + 300
        while True:
            sweeps = list((folder / "results").glob("watched-*"))
            states = journal_states(sweeps[0]) if sweeps else {}
            done = sum(1 for s in states.values() if s == "completed")
            if done >= 2 and "running" in states.values():
                break
            if driver.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the sweep ended or stalled:\n{driver.communicate()[0]}")
            time.sleep(0.5)
        sweep_dir = sweeps[0]
        servers.append(start("dashboard", str(sweep_dir), "--port", str(optuna_port)))
        page = f"http://127.0.0.1:{optuna_port}/dashboard/studies/0"
        wait_for(f"http://127.0.0.1:{optuna_port}/api/studies")
        shoot(args.browser, page, out / "01-optuna-dashboard.png")
        print(
            "  optuna-dashboard on the running sweep's study: objective named score, the "
            "history, and trials carrying sweeper_trial, sweeper_state, sweeper_gpu_seconds"
        )
        wait_for(f"http://127.0.0.1:{ray_port}/")
        shoot(args.browser, f"http://127.0.0.1:{ray_port}/#/actors", out / "02-ray-actors.png")
        print(f"  Ray's Actors page: the trials' actors, repr 'sweeper {sweep_dir.name}, from ...'")
        output, _ = driver.communicate(timeout=600)
        if driver.returncode != 0:
            raise SystemExit(f"the sweep failed:\n{output}")
        shown = subprocess.run(
            [sys.executable, "-m", "sweeper", "show", str(sweep_dir)],
            cwd=folder, env=env, text=True, capture_output=True, check=True,
        )  # fmt: skip
        (link,) = [
            line.split()[1] for line in shown.stdout.splitlines() if line.startswith("runs:")
        ]
        link = link.replace("127.0.0.1:5000", f"127.0.0.1:{mlflow_port}")
        servers.append(start("ui", "--port", str(mlflow_port)))
        wait_for(f"http://127.0.0.1:{mlflow_port}/health", timeout=120)
        shoot(args.browser, link, out / "03-mlflow-runs.png", wait_ms=20_000)
        print("  MLflow's runs view of the experiment (model-training view), from sweeper show")
    finally:
        for process in [*servers, driver]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
