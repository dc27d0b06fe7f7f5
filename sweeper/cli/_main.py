"""The ``sweeper`` command line."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sweeper._format import first_line
from sweeper.cli._dashboard import dashboard as _dashboard
from sweeper.cli._inspect import COMMANDS as _INSPECT_COMMANDS
from sweeper.cli._options import CONFIG as _CONFIG
from sweeper.cli._options import SWEEP, locate
from sweeper.cli._plan import plan as _plan
from sweeper.cli._plot import plot as _plot
from sweeper.errors import SweeperError

if TYPE_CHECKING:
    from sweeper.execution._sweep import SweepResult

__all__ = ["main"]

_SPEC = click.Path(path_type=Path, dir_okay=False)
# A manifest's model definition folder (ffdl train MANIFEST MODEL_DIR); load_spec checks it.
_MODEL_DIR = click.argument("model_dir", required=False, type=click.Path(path_type=Path))


def _fail(error: SweeperError) -> None:
    # One line, always: a multi-line error (a trial's log tail) shows its first line only.
    click.echo(f"error: {first_line(error) or type(error).__name__}", err=True)
    sys.exit(error.exit_code)


class _Group(click.Group):
    """Turns every :class:`SweeperError`, and click's usage errors, into one line on stderr and
    its exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SweeperError as error:
            _fail(error)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare `sweeper`: click prints the help
        except click.UsageError as error:
            # Click's usage errors take four lines; sweeper's errors take one.
            where = error.ctx.command_path if error.ctx is not None else ctx.command_path
            message = error.format_message().rstrip(".")
            click.echo(f"error: {message} ({where}); see {where} --help", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        return None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeper")
def main() -> None:
    """Hyperparameter sweeps on Ray Tune, with Optuna search and MLflow tracking."""


_ADDRESS = click.option(
    "--address",
    help="Ray cluster to run on (auto, or HOST:PORT of its head's GCS, e.g. 10.0.0.1:6379) "
    "instead of a local Ray. Not ray:// (Ray Client): use ray job submit.",
)
_DASHBOARD = click.option(
    "--dashboard/--no-dashboard",
    default=None,
    help="Start the local Ray's dashboard on 127.0.0.1 (default: [ray] dashboard, on).",
)


def _finish(result: SweepResult, quiet: bool) -> None:
    """Print what the CLI adds to a sweep's own output, and exit with the sweep's status."""
    spec = result.spec
    if quiet:
        best = result.best
        if best is not None:
            click.echo(f"best {best['trial']}: {spec.search.metric}={best[spec.search.metric]}")
    if result.signal is not None:
        click.echo(f"error: interrupted; resume with: sweeper resume {result.sweep_dir}", err=True)
        sys.exit(128 + result.signal)  # the shell's convention: 130 for Ctrl-C
    if result.status == "failed":
        logs = f"; their logs are in {result.sweep_dir / 'trials'}" if result.failed else ""
        click.echo(f"error: sweep failed: {result.reason}{logs}", err=True)
        sys.exit(1)
    total = len(result.results)
    if result.unsynced:
        click.echo(
            f"error: {len(result.unsynced)} uploads to the results store are pending; "
            f"run: sweeper sync {result.sweep_dir}",
            err=True,
        )
        sys.exit(1)
    if result.failed:
        click.echo(
            f"error: {result.failed} of {total} trials failed; their logs are in "
            f"{result.sweep_dir / 'trials'}",
            err=True,
        )
        sys.exit(1)


@main.command()
@click.argument("spec", type=_SPEC)
@_MODEL_DIR
@_CONFIG
@_ADDRESS
@_DASHBOARD
@click.option("--quiet", "-q", is_flag=True, help="Print only the best trials.")
@click.option(
    "--resume/--new",
    "resume_choice",
    default=None,
    help="When a halted or interrupted sweep of this same spec exists: resume it, or start a "
    "new sweep (default: ask on a terminal, start a new sweep otherwise).",
)
@click.option(
    "--warm-start",
    "warm_start",
    multiple=True,
    metavar="SWEEP",
    help="Seed the search with the finished trials of an earlier SWEEP (repeatable): Optuna "
    "learns from them; grid and random skip their points with search.skip_evaluated.",
)
def run(
    spec: Path,
    model_dir: Path | None,
    config: Path | None,
    address: str | None,
    dashboard: bool | None,
    quiet: bool,
    resume_choice: bool | None,
    warm_start: tuple[str, ...],
) -> None:
    """Run the sweep that SPEC (an experiment.yml, or an FfDL/WML manifest) describes.

    MODEL_DIR, for a manifest only, is the folder its command and files are relative to (as
    `ffdl train MANIFEST MODEL_DIR` took it); by default the manifest's own folder.

    Exits 0 when every trial completed (or a budget or `sweeper stop` halted the sweep), 1 when
    a trial failed or the sweep could not run, 2 when SPEC or the settings are invalid, 130
    when Ctrl-C halted it.
    """
    from sweeper.execution._sweep import resume as resume_sweep
    from sweeper.execution._sweep import run as run_sweep
    from sweeper.execution._sweep import unfinished_sweep
    from sweeper.settings import load_settings
    from sweeper.spec import load_spec

    loaded = load_spec(spec, model_dir=model_dir)
    settings = load_settings(config)
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    echo = None if quiet else click.echo
    seeding = bool(warm_start or loaded.search.warm_start)
    earlier = (
        unfinished_sweep(loaded, settings) if resume_choice is not False and not seeding else None
    )
    if earlier is not None and resume_choice is None:
        if sys.stdin.isatty():
            resume_choice = click.confirm(
                f"sweep {earlier.name} of this spec did not finish; resume it?", default=True
            )
        else:
            click.echo(
                f"note: sweep {earlier.name} of this spec did not finish; starting a new one "
                f"(resume it with: sweeper resume {earlier}, or run --resume)",
                err=True,
            )
    if earlier is None and resume_choice:
        click.echo(
            f"note: no halted or interrupted sweep of {loaded.name} to resume; starting a new one",
            err=True,
        )
    if earlier is not None and resume_choice:
        result = resume_sweep(
            earlier, settings, spec=loaded, address=address, echo=echo, dashboard=dashboard
        )
    else:
        result = run_sweep(
            loaded,
            settings,
            address=address,
            echo=echo,
            dashboard=dashboard,
            warm_start=warm_start,
        )
    _finish(result, quiet)


@main.command()
@SWEEP
@_CONFIG
@_ADDRESS
@_DASHBOARD
@click.option("--quiet", "-q", is_flag=True, help="Print only the best trials.")
@click.option("--retry-failed", is_flag=True, help="Run trials that failed for good again too.")
def resume(
    sweep: str | None,
    config: Path | None,
    address: str | None,
    dashboard: bool | None,
    quiet: bool,
    retry_failed: bool,
) -> None:
    """Continue a halted or interrupted SWEEP (its folder or id).

    Finished trials are kept; interrupted ones run again from their checkpoints; the search
    continues where it was. Exits like `sweeper run`.
    """
    from sweeper.execution._sweep import resume as resume_sweep
    from sweeper.settings import load_settings

    settings = load_settings(config)
    result = resume_sweep(
        locate(sweep, config),
        settings,
        retry_failed=retry_failed,
        address=address,
        echo=None if quiet else click.echo,
        dashboard=dashboard,
    )
    _finish(result, quiet)


@main.command()
@SWEEP
@_CONFIG
@_ADDRESS
@_DASHBOARD
@click.option(
    "--trials",
    metavar="N|+N",
    help="The new number of trials, or +N for N more (a grid grows by its values: --spec).",
)
@click.option(
    "--spec",
    "new_spec",
    type=_SPEC,
    help="A changed spec: only its search space, trials and limits may differ.",
)
@click.option("--max-gpu-hours", type=float, help="A new limits.max_gpu_hours (all sessions).")
@click.option("--max-duration", help="A new limits.max_duration (each session), e.g. 2h.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the best trials.")
@click.option("--retry-failed", is_flag=True, help="Run trials that failed for good again too.")
def extend(
    sweep: str | None,
    config: Path | None,
    address: str | None,
    dashboard: bool | None,
    trials: str | None,
    new_spec: Path | None,
    max_gpu_hours: float | None,
    max_duration: str | None,
    quiet: bool,
    retry_failed: bool,
) -> None:
    """Continue a finished or halted SWEEP with more trials, higher limits or a changed space.

    Its trials stay and new ones are numbered after them; the Optuna study, the MLflow parent
    run and the GPU budget go on. With --spec, earlier trials that fit the new space are
    carried into it; a change to anything but the space, trials and limits is refused. Exits
    like `sweeper run`.
    """
    from sweeper.execution._extend import extend as extend_sweep
    from sweeper.settings import load_settings

    settings = load_settings(config)
    folder = locate(sweep, config)
    duration: str | float | None = max_duration
    with contextlib.suppress(ValueError, TypeError):  # 2h, 90m: limits.max_duration reads it
        duration = float(max_duration)  # type: ignore[arg-type]
    result = extend_sweep(
        folder,
        settings,
        spec=new_spec,
        trials=trials,
        max_gpu_hours=max_gpu_hours,
        max_duration=duration,
        retry_failed=retry_failed,
        address=address,
        echo=None if quiet else click.echo,
        dashboard=dashboard,
    )
    _finish(result, quiet)


@main.command()
@SWEEP
@_CONFIG
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the sweep has halted.",
)
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait at most.")
def stop(sweep: str | None, config: Path | None, wait: bool, timeout: float) -> None:
    """Halt a running SWEEP gracefully, from any terminal on the driver's machine.

    Running trials stop and their results are kept and synced; the sweep can be resumed with
    `sweeper resume`. Exits 1 if it has not halted within --timeout.
    """
    import time

    from sweeper._journal import SweepState
    from sweeper._layout import STOP_FILE

    folder = locate(sweep, config)
    state = SweepState.load(folder)
    assert state is not None
    if state.shown_status != "running":
        # Stopping what has stopped is no error (as `docker stop`): what was asked holds.
        resumable = state.shown_status in ("halted", "interrupted")
        click.echo(
            f"sweep {state.sweep} is not running ({state.shown_status}); nothing to stop"
            + (f"; resume it with: sweeper resume {state.sweep}" if resumable else "")
        )
        return
    (folder / STOP_FILE).write_text(f"{time.time()}\n", encoding="utf-8")
    click.echo(f"stop requested for sweep {state.sweep}")
    if not wait:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = SweepState.load(folder)
        if state is not None and state.shown_status != "running":
            click.echo(
                f"sweep {state.sweep} {state.shown_status}: {state.reason or ''}".rstrip(": ")
            )
            return
        time.sleep(0.5)
    click.echo(f"error: sweep {folder.name} has not halted after {timeout:g}s", err=True)
    sys.exit(1)


@main.command()
@click.argument("spec", type=_SPEC)
@_MODEL_DIR
def validate(spec: Path, model_dir: Path | None) -> None:
    """Check SPEC (or a manifest, with its MODEL_DIR) without running anything."""
    from sweeper.spec import load_spec

    loaded = load_spec(spec, model_dir=model_dir)
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    from sweeper.cli._plan import search_lines

    click.echo(f"{spec}: valid ({loaded.trial_count()} trials, {loaded.framework})")
    for line in search_lines(loaded):
        click.echo(f"  {line}")


@main.command()
@SWEEP
@_CONFIG
def sync(sweep: str | None, config: Path | None) -> None:
    """Upload what a sweep could not upload to its results store (after an outage).

    SWEEP is the sweep's folder or its id (a folder under [results] dir). Credentials come from
    boto3's standard chain. Exits 1 while anything is still pending.
    """
    from sweeper.storage import sync_pending
    from sweeper.storage._sweep import load_sweep_store

    folder = locate(sweep, config)
    report = sync_pending(folder, load_sweep_store(folder))
    if report.pending:
        click.echo(
            f"error: {len(report.pending)} uploads still pending: {report.summary()}", err=True
        )
        sys.exit(1)
    click.echo(f"{folder.name}: every upload verified ({len(report.uploaded)} files now)")


@main.command()
@click.argument("manifest", type=_SPEC)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the spec here (default: print it).",
)
def convert(manifest: Path, output: Path | None) -> None:
    """Write the sweeper spec equivalent to an FfDL/WML training MANIFEST.

    Credentials in the manifest's data_stores are left out: give them to boto3 (environment
    or profile) and the endpoint to sweeper.toml's [s3] endpoint_url.
    """
    import yaml

    from sweeper._yaml import load_yaml
    from sweeper.errors import SpecError
    from sweeper.manifest import convert_manifest, in_manifest_terms, is_manifest
    from sweeper.spec import parse_spec

    try:
        text = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"manifest file must exist, got {str(manifest)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"manifest file must be readable UTF-8 text, got {exc}", file=str(manifest)
        ) from None
    data = load_yaml(text, file=str(manifest), what="manifest")
    if not is_manifest(data):
        raise SpecError(
            "manifest must have a framework mapping (an FfDL manifest) or a model_definition "
            "(a Watson ML training definition), got neither",
            file=str(manifest),
            field="framework",
            hint="this looks like a sweeper spec already",
        )
    spec, store, notes = convert_manifest(data, file=str(manifest))
    # What convert writes, run would accept: the same checks as sweeper validate MANIFEST.
    try:
        parsed = parse_spec(spec, file=str(manifest), base_dir=manifest.resolve().parent)
    except SpecError as error:
        raise in_manifest_terms(error, data) from None
    notes = [*notes, *(note for note in parsed.notes if note not in notes)]
    header = [f"# Converted from {manifest.name} by sweeper convert."]
    if spec.get("command"):
        header.append("# Run it from the manifest's folder: paths are relative to it.")
    if store is not None:
        header.append(
            f"# Object store endpoint: {store.endpoint_url or 'AWS'}; put it in sweeper.toml "
            "([s3] endpoint_url) and the credentials in the environment (AWS_ACCESS_KEY_ID...)."
        )
    header += [f"# Note: {note}" for note in notes]
    text = "\n".join(header) + "\n" + yaml.safe_dump(spec, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_output(output, text)
        click.echo(f"wrote {output}")


def _write_output(path: Path, text: str) -> None:
    """Write a file the user asked for, whole or not at all, or say in one line why not."""
    import os
    import tempfile

    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise SweeperError(
            f"output must be a writable path, got {str(path)!r} ({exc.strerror})"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise SweeperError(
            f"output must be a writable path, got {str(path)!r} ({exc.strerror})"
        ) from None


@main.command()
@_CONFIG
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, help="Port to listen on.")
def ui(config: Path | None, host: str, port: int) -> None:
    """Start the MLflow UI on the configured tracking store."""

    from sweeper.settings import load_settings
    from sweeper.tracking import ui_link

    settings = load_settings(config)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        settings.mlflow.tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    click.echo(f"MLflow UI on http://{host}:{port} for {settings.mlflow.tracking_uri}")
    for name, experiment_id in _experiments(settings.mlflow.tracking_uri):
        # MLflow 3 opens on its GenAI view: link each experiment's runs in the training view.
        click.echo(f"  {name}: {ui_link(f'http://{host}:{port}', experiment_id)}")
    # MLflow's UI runs uvicorn and job workers of its own, which outlive it when only it is
    # signalled: it gets a process group, and the whole group goes when the UI is stopped.
    server = subprocess.Popen(command, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        status = server.wait()
    except KeyboardInterrupt:
        status = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_group(server)
    sys.exit(status)


def _experiments(tracking_uri: str) -> list[tuple[str, str]]:
    """The store's experiments that have runs, by name (none when it cannot be read)."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.search_experiments()
        return sorted(
            (e.name, e.experiment_id)
            for e in found
            if client.search_runs([e.experiment_id], max_results=1)
        )
    except Exception:
        return []  # the UI itself says what is wrong with the store


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """End ``process``'s process group: SIGTERM, then SIGKILL after 10 s."""
    import os
    import time

    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the UI itself: a zombie still counts as the group's
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
    process.poll()


for _command in (*_INSPECT_COMMANDS, _dashboard, _plan, _plot):
    main.add_command(_command)
