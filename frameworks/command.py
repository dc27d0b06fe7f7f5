"""The ``command`` adapter: any training program, run as a process of its own.

Hyperparameters reach the program three ways at once:

- command-line flags ``--<name>=<value>``, appended to the command, or placed where the command
  says ``${args}``; ``${<name>}`` in the command stands for one parameter's value;
- environment variables ``SWEEPER_PARAM_<NAME>`` (upper case);
- ``config.json`` (``{"name": value, ...}``) in its working directory.

It also sees the original service's variables (``DATA_DIR``, ``RESULT_DIR``, ``LOG_DIR``,
``CHECKPOINT_DIR``, ``JOB_STATE_DIR``, ``MODEL_DIR``, ``TRAINING_ID``, ``GPU_COUNT``, ``SUBID``,
``NUM_LEARNERS``, ``LEARNER_ID``) and ``CUDA_VISIBLE_DEVICES``.

With ``resources.learners > 1`` the command runs once per learner, each a process of its own
with ``LEARNER_ID`` 1..N, ``NUM_LEARNERS`` N, the ``JOB_STATE_DIR`` they share, and the
variables torch.distributed's ``env://`` and ``torchrun`` read (``MASTER_ADDR``,
``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``); each has its
own working view of the code folder and ``LOG_DIR``. Metrics come from learner 1.

Its metrics come from its output (:mod:`sweeper.frameworks._metrics`) and its TensorBoard
event files (:mod:`sweeper.frameworks._tensorboard`). When it fails, the error begins with its
own last error line, found in its log.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sweeper._layout import (
    JOB_STATE_DIR,
    NOT_CODE,
    learner_logs_dir,
    learner_work_dir,
    training_id,
    trial_number,
)
from sweeper._mounts import link_code, rewrite, trial_folders
from sweeper.errors import SpecError, TrialError
from sweeper.frameworks._metrics import (
    FileFollower,
    LineParser,
    emetrics_record,
    json_line_record,
    numeric_metrics,
    program_error,
)
from sweeper.frameworks._process import TrialProcess, child_environment
from sweeper.frameworks._tensorboard import TensorBoardFollower
from sweeper.frameworks.base import FrameworkAdapter

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sweeper.frameworks.context import TrialContext
    from sweeper.spec import MetricsSpec

__all__ = ["CommandAdapter"]

CONFIG_FILE = "config.json"
EMETRICS_FILE = "evaluation-metrics.txt"
VAL_DICT_FILE = "val_dict_list.json"
PARAM_ENV_PREFIX = "SWEEPER_PARAM_"
_MACRO = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_POLL_S = 0.5


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class CommandAdapter(FrameworkAdapter):
    """Runs ``command`` in a fresh process per trial and reads metrics from its output.

    When sweeper stops the trial, the program gets SIGTERM, and SIGKILL 10 s later.
    """

    name: ClassVar[str] = "command"
    distributed: ClassVar[bool] = True
    uses: ClassVar[frozenset[str]] = frozenset({"command", "metrics"})
    requires: ClassVar[frozenset[str]] = frozenset({"command"})

    # -- driver side ---------------------------------------------------------------------------

    def argv_template(self) -> list[str]:
        """The command as a list, split like a shell would (but never run by one)."""
        command = self.spec.command
        return shlex.split(command) if isinstance(command, str) else list(command or [])

    def validate(self) -> None:
        try:
            argv = self.argv_template()
        except ValueError as exc:
            raise SpecError(
                f"command must be a command line, got {self.spec.command!r} ({exc})",
                file=self.spec.label,
                field="command",
            ) from None
        if not argv or not argv[0]:
            raise SpecError(
                f"command must name a program, got {self.spec.command!r}",
                file=self.spec.label,
                field="command",
            )
        names = set(self.spec.space)
        for token in argv:
            for macro in _MACRO.findall(token):
                # Upper-case names are environment variables (DATA_DIR, HOME...), read at run time.
                if macro == "args" or macro in names or macro.isupper():
                    continue
                close = difflib.get_close_matches(macro, sorted(names), n=1)
                raise SpecError(
                    f"command placeholders must name a parameter, got '${{{macro}}}'",
                    file=self.spec.label,
                    field="command",
                    hint=f"did you mean '${{{close[0]}}}'?" if close else "or write ${args}",
                )
        program = argv[0]
        if _MACRO.search(program) is None and not (
            shutil.which(program) or self.spec.resolve(program).is_file()
        ):
            raise SpecError(
                f"command program must be on PATH or a file, got {program!r}",
                file=self.spec.label,
                field="command",
            )

    # -- trial side ----------------------------------------------------------------------------

    def argv(self, params: dict[str, Any], env: dict[str, str]) -> list[str]:
        """The command with its placeholders filled and, unless placed, flags appended."""
        flags = [f"--{name}={_flag_value(value)}" for name, value in params.items()]
        template = self.argv_template()
        # A shell given a script (manifests: bash -c "...") expands its own variables.
        shell = (
            len(template) > 1 and Path(template[0]).name in ("bash", "sh") and (template[1] == "-c")
        )
        argv: list[str] = []
        placed = False
        for token in template:
            if token == "${args}":
                argv.extend(flags)
                placed = True
                continue
            if shell:
                # The shell expands variables ($DATA_DIR); sweeper fills in parameters, quoted.
                argv.append(
                    _MACRO.sub(
                        lambda m: (
                            shlex.quote(_flag_value(params[m.group(1)]))
                            if m.group(1) in params
                            else m.group(0)
                        ),
                        token,
                    )
                )
                continue
            placed = placed or any(m in params for m in _MACRO.findall(token))

            def fill(match: re.Match[str]) -> str:
                name = match.group(1) or match.group(2)
                if match.group(1) and name in params:
                    return _flag_value(params[name])
                # Like a shell, but from the trial's environment (DATA_DIR and the rest).
                return env.get(name, match.group(0))

            argv.append(_VARIABLE.sub(fill, token))
        if not placed:
            argv.extend(flags)
        # Paths in a spec are relative to where sweeper runs; the program runs elsewhere.
        if not os.path.isabs(argv[0]) and self.spec.resolve(argv[0]).is_file():
            argv[0] = str(self.spec.resolve(argv[0]))
        return argv

    def _workdir(self, work: Path, mapping: Mapping[str, str]) -> None:
        """Make ``work``, the trial's working directory: a view of the code folder with its own
        config.json.

        Each entry of the code folder is linked in, so ``python train.py`` and relative reads
        work as in the folder itself, while files the program creates, and its config.json,
        belong to this trial alone. A text file that names one of the spec's ``mounts`` (found
        on load: :attr:`Spec.mount_files`) is a copy with the trial's folders in its place
        instead (see :mod:`sweeper._mounts`).
        """
        work.mkdir(parents=True, exist_ok=True)
        code = self.spec.base_dir
        source = self.spec.source
        skip = {*NOT_CODE, CONFIG_FILE}
        if source is not None and source.parent == code:
            skip.add(source.name)  # not the spec or manifest itself: a manifest may hold secrets
        link_code(code, work, mapping, skip, set(self.spec.mount_files))

    def environment(self, params: dict[str, Any], ctx: TrialContext, work: Path) -> dict[str, str]:
        """The process's environment: the actor's, the service's variables and the params."""
        logs = ctx.trial_dir / learner_logs_dir(ctx.rank + 1)
        job_state = ctx.trial_dir / JOB_STATE_DIR  # shared by the trial's learners
        for folder in (logs, job_state):
            folder.mkdir(parents=True, exist_ok=True)
        extra = {
            "DATA_DIR": str(ctx.data_dir or work),
            "RESULT_DIR": str(ctx.output_dir),
            "CHECKPOINT_DIR": str(ctx.checkpoint_dir),
            "LOG_DIR": str(logs),
            "JOB_STATE_DIR": str(job_state),
            "MODEL_DIR": str(work),
            "TRAINING_ID": (
                training_id(ctx.sweep, ctx.trial, self.spec.trial_count())
                if self.spec.results_layout == "ffdl"
                else ctx.sweep
            ),
            "SUBID": f"{trial_number(ctx.trial):04d}",
            "GPU_COUNT": str(len(ctx.gpu_ids)),
            "NUM_LEARNERS": str(ctx.world_size),
            "LEARNER_ID": str(ctx.rank + 1),
            "SWEEPER_TRIAL": ctx.trial,
            "SWEEPER_SWEEP": ctx.sweep,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(self.spec.base_dir), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        extra.update({f"{PARAM_ENV_PREFIX}{k.upper()}": _flag_value(v) for k, v in params.items()})
        return child_environment(extra)

    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        """Run the command to its end, reporting the metrics its output holds.

        Raises:
            TrialError: If the program is missing or exits with a non-zero status (the error
                begins with the program's own error line, if its log shows one), or if
                ``metrics.tensorboard`` names a variable its environment lacks.
        """
        work = ctx.trial_dir / learner_work_dir(ctx.rank + 1)
        job_state = ctx.trial_dir / JOB_STATE_DIR
        mapping = trial_folders(self.spec.mounts, ctx.data_dir or work, ctx.output_dir, job_state)
        self._workdir(work, mapping)
        (work / CONFIG_FILE).write_text(json.dumps(params, indent=2, default=str) + "\n")
        env = self.environment(params, ctx, work)
        # The mount paths (FfDL's /mnt/data/<bucket>) wherever the program may read them.
        env = {name: rewrite(value, mapping) for name, value in env.items()}
        argv = [rewrite(token, mapping) for token in self.argv(params, env)]
        metrics = self.spec.metrics or _default_metrics()
        lock = threading.Lock()

        def report(step: int | None, values: dict[str, float]) -> None:
            with lock:  # lines and files are read by two threads
                ctx.report(step=step, **values)

        followers: list[FileFollower | TensorBoardFollower] = []
        if metrics.emetrics:
            logs = Path(env["LOG_DIR"])
            for path in (logs / EMETRICS_FILE, logs / env["SUBID"] / EMETRICS_FILE):
                followers.append(FileFollower(path, emetrics_record, report))
        if metrics.file:
            followers.append(FileFollower(work / metrics.file, json_line_record, report))
        if metrics.tensorboard:
            folder = work / _expand(metrics.tensorboard, env, "metrics.tensorboard")
            followers.append(TensorBoardFollower(folder, report))
        # The original service kept the combined log as $JOB_STATE_DIR/latest-log.
        latest = Path(env["JOB_STATE_DIR"]) / "latest-log"
        if ctx.rank == 0 and not latest.is_symlink():
            latest.symlink_to(ctx.log_path)
        process = TrialProcess(argv, cwd=work, env=env, log_path=ctx.log_path)
        # Where this run's output begins: a retried trial's log holds the earlier attempts'.
        start = ctx.log_path.stat().st_size if ctx.log_path.exists() else 0
        done = threading.Event()
        stopped: list[BaseException] = []

        def follow() -> None:
            try:
                while not done.wait(_POLL_S):
                    for follower in followers:
                        follower.poll()
            except BaseException as exc:  # SystemExit: sweeper stops the trial
                # Raised in this thread, it would end only the thread: end the program, and
                # let the trial's own thread raise it once run() returns.
                stopped.append(exc)
                process.stop()

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        try:
            status = process.run(LineParser(metrics.prefix, metrics.regex, report))
        except FileNotFoundError:
            raise TrialError(f"command program not found: {argv[0]}") from None
        finally:
            done.set()
            watcher.join()
        if stopped:
            raise stopped[0]
        for follower in followers:
            follower.poll()
        if metrics.emetrics:
            self._report_val_dict_list(ctx.output_dir / VAL_DICT_FILE, report)
        if status != 0:
            # The program's own error first: the console shows an error's first line only.
            failure = f"command exited with status {status}: {shlex.join(argv)}"
            cause = program_error(ctx.log_path, start)
            raise TrialError(f"{cause} ({failure})" if cause else failure)

    @staticmethod
    def _report_val_dict_list(
        path: Path, report: Callable[[int | None, dict[str, float]], None]
    ) -> None:
        """The objective history the service's HPO runs wrote: ``[{"steps": 1, "acc": 0.9}]``."""
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                step, values = numeric_metrics({**entry, "step": entry.get("steps")})
                values.pop("steps", None)
                if values:
                    report(step, values)


def _expand(text: str, env: Mapping[str, str], field: str) -> str:
    """``text`` with its ``$NAME`` and ``${NAME}`` filled in from ``env``.

    Raises:
        TrialError: If ``env`` lacks a variable ``text`` names: an empty string would point
            the path elsewhere.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in env:
            raise TrialError(
                f"{field} must name variables the trial's environment sets, got ${name} "
                f"in {text!r}",
                hint="e.g. $JOB_STATE_DIR, $LOG_DIR or $RESULT_DIR",
            )
        return env[name]

    return _VARIABLE.sub(fill, text)


def _default_metrics() -> MetricsSpec:
    from sweeper.spec import MetricsSpec

    return MetricsSpec()
