"""The live view of a running sweep: a rich display on a terminal, periodic lines elsewhere.

Either way it shows the trials per state, the best metric so far with its parameters, the
elapsed time, the GPU-hours used and the running trials (name, parameters, step, latest
metric). Off a terminal (CI, ``| tee``) it prints one status line every ``interval`` seconds,
so a long sweep's log grows by a line per finished trial plus one per interval, never more.
A :attr:`SweepProgress.watch` (trials no node can hold, on a cluster) is asked every interval
too, on a terminal as well, and what it says goes above the display.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sweeper._format import clock as _clock
from sweeper._format import format_params, format_value
from sweeper.execution._console import TrialPrinter

if TYPE_CHECKING:
    from sweeper._journal import TrialRecord
    from sweeper.spec import Spec

__all__ = ["SweepProgress"]

_ACTIVE = ("starting", "staging", "running", "storing")
_ENDED = ("completed", "stopped", "failed", "halted")
_SHOWN_RUNNING = 12  # running trials listed on a terminal; the rest are counted
# Seconds between looks of the watch when status lines are off (interval 0): a warning is not
# a status line, and trials waiting in silence are what it is for.
_WATCH_EVERY = 30.0


class SweepProgress:
    """Follows a session's trials for the person watching it.

    Args:
        spec: The sweep's spec.
        sweep: The sweep's id.
        echo: Where lines go.
        records: Returns the sweep's trial records (read from another thread).
        gpu_seconds: Returns the GPU-seconds used so far.
        live: Draw a rich live display (a terminal) instead of periodic lines.
        interval: Seconds between status lines when not ``live``, and between looks of
            :attr:`watch` (every 30 s when 0).
        done: Trials that ended in earlier sessions.

    Attributes:
        watch: Called every interval with the number of trials waiting to run; a line it
            returns is shown (see :class:`~sweeper.execution._placement.PlacementWatch`).
    """

    def __init__(
        self,
        spec: Spec,
        sweep: str,
        echo: Callable[[str], None],
        records: Callable[[], list[TrialRecord]],
        gpu_seconds: Callable[[], float],
        *,
        live: bool = False,
        interval: float = 30.0,
        done: int = 0,
    ) -> None:
        self.spec = spec
        self.sweep = sweep
        self.echo = echo
        self.records = records
        self.gpu_seconds = gpu_seconds
        self.live = live
        self.interval = interval
        self.printer = TrialPrinter(spec, self._line, done=done)
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._display: Any = None
        self.watch: Callable[[int], str | None] | None = None

    def __call__(self, kind: str, record: TrialRecord) -> None:
        self.printer(kind, record)

    def _line(self, text: str) -> None:
        display = self._display
        if display is not None:  # above the live display, which redraws below it
            display.console.print(text, markup=False, highlight=False, soft_wrap=True)
            # At once, not at its next tick: the block must agree with the line just printed
            # (a trial said finished must not still be listed as running).
            display.refresh()
        else:
            self.echo(text)

    # -- what is shown -------------------------------------------------------------------------

    def _snapshot(self) -> list[TrialRecord]:
        for _ in range(3):  # the records change on Tune's thread while this one reads
            try:
                return list(self.records())
            except RuntimeError:
                continue
        return []

    def _best(self, records: list[TrialRecord]) -> TrialRecord | None:
        metric, sign = self.spec.search.metric, 1 if self.spec.search.mode == "max" else -1
        scored = [r for r in records if r.state == "completed" and metric in r.metrics]
        return max(scored, key=lambda r: sign * r.metrics[metric], default=None)

    def summary(self) -> str:
        """One line: trials per state, best so far, GPU-hours and elapsed time."""
        records = self._snapshot()
        states = Counter(r.state for r in records)
        done = sum(states[s] for s in _ENDED)
        running = sum(states[s] for s in _ACTIVE)
        ended = ", ".join(f"{states[s]} {s}" for s in _ENDED if states[s])
        parts = [f"{done}/{self.spec.trial_count()} done" + (f" ({ended})" if ended else "")]
        parts.append(f"{running} running, {states['queued']} queued")
        best = self._best(records)
        metric = self.spec.search.metric
        if best is not None:
            parts.append(f"best {metric}={format_value(best.metrics[metric])} ({best.name})")
        parts.append(f"{self.gpu_seconds() / 3600:.3g} GPU-h")
        parts.append(f"elapsed {_clock(time.time() - self.started)}")
        return "; ".join(parts)

    def waiting(self) -> int:
        """Trials of the sweep neither ended nor under way: those Ray has yet to start."""
        states = Counter(r.state for r in self._snapshot())
        ended_or_running = sum(states[s] for s in (*_ENDED, *_ACTIVE))
        return max(0, self.spec.trial_count() - ended_or_running)

    def _renderable(self) -> Any:
        from rich.console import Group, RenderableType
        from rich.table import Table
        from rich.text import Text

        records = self._snapshot()
        metric = self.spec.search.metric
        lines: list[RenderableType] = [Text(f"sweep {self.sweep}: {self.summary()}", style="bold")]
        best = self._best(records)
        if best is not None:
            lines.append(Text(f"best {best.name}: {_params(best.params, self.spec)}"))
        running = sorted((r for r in records if r.state in _ACTIVE), key=lambda r: r.name)
        if running:
            # On a small terminal (80x24) the block stays within the screen, a row per trial:
            # cells are cut with an ellipsis, never wrapped (a number split over two lines).
            height = self._display.console.size.height if self._display is not None else 24
            shown = max(1, min(_SHOWN_RUNNING, height - 8))
            table = Table(box=None, pad_edge=False, header_style="bold")
            for column in ("trial", "state", "step", metric, "params"):
                table.add_column(column, no_wrap=True, overflow="ellipsis")
            for record in running[:shown]:
                value = record.metrics.get(metric)
                table.add_row(
                    record.name,
                    record.state,
                    str(record.steps) if record.steps else "-",  # nothing reported yet
                    "-" if value is None else format_value(value),
                    _params(record.params, self.spec),
                )
            lines.append(table)
            if len(running) > shown:
                lines.append(Text(f"... and {len(running) - shown} more running"))
        return Group(*lines)

    # -- starting and stopping -----------------------------------------------------------------

    def __enter__(self) -> SweepProgress:
        self.started = time.time()
        if self.live:
            from rich.live import Live

            self._display = Live(get_renderable=self._renderable, refresh_per_second=2)
            self._display.__enter__()
        if (not self.live and self.interval > 0) or self.watch is not None:
            self._thread = threading.Thread(target=self._tick, name="sweeper-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._display is not None:
            self._display.__exit__(None, None, None)
            self._display = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _tick(self) -> None:
        status = not self.live and self.interval > 0
        while not self._stop.wait(self.interval if self.interval > 0 else _WATCH_EVERY):
            if status:
                self.echo(f"[progress] {self.summary()}")
            if self.watch is not None and (line := self.watch(self.waiting())) is not None:
                self._line(line)


def _params(params: dict[str, Any], spec: Spec) -> str:
    return format_params(params, spec.dimensions)
