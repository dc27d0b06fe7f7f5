"""``sweeper dashboard``: optuna-dashboard on a sweep's study, live while the sweep runs.

Every sweep has an Optuna study in its folder (``optuna.journal``): an Optuna search's own, or
for grid and random search one its trials are told into as they end
(:class:`sweeper.search._optuna.StudyLog`). optuna-dashboard's WSGI app is served here rather
than with its ``run_server``, so that Ctrl-C and SIGTERM stop it at once and cleanly.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from sweeper.cli._options import CONFIG, SWEEP, locate
from sweeper.errors import SweeperError, UsageError

__all__ = ["dashboard"]


@click.command()
@SWEEP
@CONFIG
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
def dashboard(sweep: str | None, config: Path | None, host: str, port: int) -> None:
    """Start optuna-dashboard on SWEEP's Optuna study: history, importance, intermediate
    values and the trials (named as sweeper names them), live while the sweep runs.

    Stops on Ctrl-C or SIGTERM.
    """
    from sweeper._journal import SweepState, read_journal
    from sweeper._layout import SPEC_FILE, STUDY_FILE
    from sweeper.spec import load_spec

    folder = locate(sweep, config)
    state = SweepState.load(folder)
    assert state is not None
    spec = load_spec(folder / SPEC_FILE, base_dir=Path(state.base_dir or "."))
    from sweeper.search._optuna import StudyLog, study_name, study_storage

    name = study_name(folder, state.sweep, spec)
    if spec.search.method != "optuna" and not (folder / STUDY_FILE).is_file():
        # A grid or random sweep from before sweeper kept their studies: made from its journal.
        log = StudyLog(folder, state.sweep, spec)
        for record in sorted(read_journal(folder).values(), key=lambda r: r.name):
            log.ended(record)
    if not (folder / STUDY_FILE).is_file():
        raise SweeperError(
            f"sweep {state.sweep} must have an Optuna study to show, got none yet "
            f"({folder / STUDY_FILE})",
            hint="it is made when the sweep's first trial starts; try again then",
        )
    storage = study_storage(folder)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        study_id = None
    server = _server(storage, host, port)
    where = f"http://{host}:{server.server_port}/dashboard/"
    page = f"{where}studies/{study_id}" if study_id is not None else where
    click.echo(f"optuna-dashboard for sweep {state.sweep} (study {name}) on {page}")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()


def _server(storage: Any, host: str, port: int) -> Any:
    """optuna-dashboard's app on a quiet WSGI server (no line per request)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    try:
        from optuna_dashboard import wsgi
    except ImportError:
        raise SweeperError(
            "sweeper dashboard needs optuna-dashboard, got it missing",
            hint="pip install optuna-dashboard",
        ) from None

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingMixIn, WSGIServer):
        # The page polls while a long request (the importance plot) runs.
        daemon_threads = True

    try:
        return make_server(host, port, wsgi(storage), server_class=Server, handler_class=Quiet)
    except OSError as exc:
        raise UsageError(
            f"--port must be free on {host}, got {port} ({exc.strerror})",
            file="command line",
            field="--port",
            hint=f"pick another, e.g. --port {port + 1}",
        ) from None


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
