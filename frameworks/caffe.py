"""The ``caffe`` adapter: Caffe 1.0's ``caffe train`` on a solver and a net prototxt.

A spec names the files in its ``caffe`` block::

    framework: caffe
    caffe: {solver: model/solver.prototxt}      # net: model/net.prototxt (optional)

and optionally where the first attempt starts: ``weights`` (``caffe train -weights``: one
``.caffemodel``, or several joined by commas) or ``snapshot`` (``-snapshot``: a ``.solverstate``).

A trial's parameters reach Caffe in two ways:

- A parameter named after a field of Caffe's ``SolverParameter`` (:data:`SOLVER_FIELDS`:
  ``base_lr``, ``momentum``, ``max_iter``, ``lr_policy``, ...) overrides that field: the
  solver's top-level ``key: value`` is replaced, or appended when the solver has none.
- Any value in the solver or the net can be a placeholder ``${name}`` (``num_output:
  ${hidden}``, ``source: "${folder}/train.txt"``), replaced by the parameter ``name``. A
  parameter used as a placeholder is only substituted, never also treated as a solver field.

Validation (on the driver, without Caffe) requires every placeholder to have a parameter and
every parameter, constants included, to land somewhere.

Each trial renders ``solver.prototxt`` and ``net.prototxt`` into its output folder and runs
``caffe train -solver solver.prototxt`` there. Rendering points the solver's ``net`` at the
rendered net, its ``snapshot_prefix`` into the output folder, sets ``solver_mode`` (GPU when the
trial has GPUs, else CPU) and, when the search has a seed and the solver sets none,
``random_seed``. Relative input paths in the net (``source``, ``mean_file``, ``root_folder``) are
made absolute against the original net's folder, and the solver's ``weights`` against the
solver's; anything else relative is relative to the output folder, Caffe's working directory.

When sweeper stops a trial, ``caffe`` gets SIGINT: it ends after the current iteration with a
snapshot (``<prefix>_iter_<N>.caffemodel`` and ``.solverstate`` in the output folder), or is
killed 10 s later. A retried or resumed trial continues from the last snapshot.
"""

from __future__ import annotations

import difflib
import shutil
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sweeper._mounts import mount_path, rewrite, trial_folders
from sweeper.errors import SpecError, TrialError
from sweeper.frameworks._caffe_run import CaffeLog, caffe_argv, latest_snapshot
from sweeper.frameworks._metrics import program_error
from sweeper.frameworks._process import TrialProcess, child_environment
from sweeper.frameworks._prototxt import Placeholder, Prototxt, format_value
from sweeper.frameworks.base import FrameworkAdapter
from sweeper.spec import Choice, Constant, IntRange, Parameter

if TYPE_CHECKING:
    from sweeper.frameworks.context import TrialContext

__all__ = [
    "INSTALL_HINT",
    "SOLVER_FIELDS",
    "CaffeAdapter",
    "CaffeLog",
    "CaffeSpec",
    "caffe_argv",
    "latest_snapshot",
]

# The scalar fields of caffe.proto's SolverParameter a parameter may override, with their type.
# net, snapshot_prefix, solver_mode and device_id are left out: the adapter sets them.
SOLVER_FIELDS: dict[str, str] = {
    "base_lr": "float",
    "lr_policy": "string",
    "gamma": "float",
    "power": "float",
    "stepsize": "int",
    "stepvalue": "int",
    "momentum": "float",
    "momentum2": "float",
    "delta": "float",
    "rms_decay": "float",
    "weight_decay": "float",
    "regularization_type": "string",
    "clip_gradients": "float",
    "type": "string",
    "max_iter": "int",
    "iter_size": "int",
    "test_iter": "int",
    "test_interval": "int",
    "test_compute_loss": "bool",
    "test_initialization": "bool",
    "display": "int",
    "average_loss": "int",
    "snapshot": "int",
    "snapshot_diff": "bool",
    "snapshot_after_train": "bool",
    "snapshot_format": "enum",
    "random_seed": "int",
    "debug_info": "bool",
    "layer_wise_reduce": "bool",
}
# Repeated fields: a list value writes one line per element.
_REPEATED = frozenset({"stepvalue", "test_iter"})
_KIND_WORDS = {
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "string": "a string",
    "enum": "an identifier such as BINARYPROTO",
}
# Other ways a solver can name its nets; sweeper renders exactly one net file.
_OTHER_NETS = ("net_param", "train_net", "test_net", "train_net_param", "test_net_param")
# Fields whose value is a file or folder Caffe reads.
_NET_INPUTS = ("source", "mean_file", "root_folder")
_SOLVER_INPUTS = ("weights",)

SOLVER_FILE = "solver.prototxt"
NET_FILE = "net.prototxt"
INSTALL_HINT = (
    "framework caffe needs the caffe command (Caffe 1.0) on PATH, and it is not there; "
    "on Debian 12 install it as root with .ci/install-caffe.sh "
    "(the caffe package of Debian 11 bullseye)"
)


class CaffeSpec(BaseModel):
    """``caffe``: the solver (and net) prototxt files a ``caffe`` trial trains with."""

    model_config = ConfigDict(extra="forbid")

    solver: str = Field(min_length=1)
    net: str | None = None
    # caffe train's -weights (a .caffemodel, or several joined by commas, to start from) and
    # -snapshot (a .solverstate to continue); Caffe takes one or the other.
    weights: str | None = Field(default=None, min_length=1)
    snapshot: str | None = Field(default=None, min_length=1)


def _values(param: Parameter) -> list[Any] | None:
    """The values ``param`` can take, or ``None`` for a float range."""
    if isinstance(param, Constant):
        return [param.value]
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, IntRange):
        return [param.low]  # integers, whichever
    return None


def _fits(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "bool"
    if isinstance(value, int):
        return kind in ("int", "float")
    if isinstance(value, float):
        return kind == "float" or (kind == "int" and value.is_integer())
    if isinstance(value, str):
        return kind == "string" or (kind == "enum" and value.isidentifier())
    return False


@dataclass(frozen=True)
class _Files:
    """The spec's solver and net, read and located."""

    solver_path: Path
    solver: Prototxt
    net_path: Path
    net: Prototxt
    net_field: str  # the spec field that leads to the net: caffe.net or caffe.solver

    def placeholders(self) -> list[tuple[Placeholder, Path, str]]:
        return [(p, self.solver_path, "caffe.solver") for p in self.solver.placeholders] + [
            (p, self.net_path, self.net_field) for p in self.net.placeholders
        ]


class CaffeAdapter(FrameworkAdapter):
    """Trains with Caffe 1.0's ``caffe`` command on the spec's solver and net prototxt.

    Caffe is a system program, not a pip extra: see :data:`INSTALL_HINT`. The module docstring
    describes how parameters reach the solver and the net.
    """

    name: ClassVar[str] = "caffe"
    extra: ClassVar[str | None] = None
    uses: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[frozenset[str]] = frozenset()
    options: ClassVar[type[BaseModel] | None] = CaffeSpec

    # -- driver side ------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the solver and net files, their placeholders and where each parameter lands.

        Raises:
            SpecError: Naming ``caffe.solver``, ``caffe.net`` or ``parameters.<name>``.
        """
        files = self._files()
        space = self.spec.space
        used = files.solver.names() | files.net.names()
        for placeholder, path, field in files.placeholders():
            name = placeholder.name
            where = f"{self._shown(path)} line {placeholder.line}"
            if not name.isidentifier():
                raise self._error(
                    f"placeholder ${{{name}}} in {where} must be ${{name}} with a parameter's "
                    "name, got an invalid name",
                    field,
                )
            if name not in space:
                close = difflib.get_close_matches(name, list(space), n=1)
                raise self._error(
                    f"placeholder ${{{name}}} in {where} must name a parameter, "
                    f"got no parameters.{name}",
                    field,
                    f"did you mean {close[0]!r}?" if close else f"add {name} to parameters",
                )
        for name, param in space.items():
            if name in used:
                self._check_values(name, param, None)
            elif name in SOLVER_FIELDS:
                self._check_values(name, param, SOLVER_FIELDS[name])
            else:
                self._lands_nowhere(name, files, used)
        self._check_inputs(files.net, files.net_path, _NET_INPUTS, files.net_field)
        self._check_inputs(files.solver, files.solver_path, _SOLVER_INPUTS, "caffe.solver")
        self._start_files()

    def _start_files(self) -> tuple[list[Path], Path | None]:
        """The ``caffe.weights`` and ``caffe.snapshot`` files, made absolute and checked."""
        block = self.spec.framework_options
        assert isinstance(block, CaffeSpec)
        if block.weights and block.snapshot:
            raise self._error(
                "caffe.weights and caffe.snapshot must not both be set, got both",
                "caffe.snapshot",
                "caffe train starts from a model (-weights) or continues a solver state "
                "(-snapshot), not both",
            )
        found: list[Path] = []
        for field, names in (
            ("caffe.weights", (block.weights or "").split(",")),
            ("caffe.snapshot", [block.snapshot or ""]),
        ):
            for name in filter(None, (n.strip() for n in names)):
                path = self.spec.resolve(name)
                if not path.is_file():
                    raise self._error(
                        f"{field} must be an existing file, got {name!r} ({path} is missing)",
                        field,
                        f"relative paths are relative to {self.spec.base_dir}",
                    )
                found.append(path)
        if block.snapshot:
            return [], found[0]
        return found, None

    def _error(self, message: str, field: str, hint: str | None = None) -> SpecError:
        return SpecError(message, file=self.spec.label, field=field, hint=hint)

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.spec.base_dir))
        except ValueError:
            return str(path)

    def _read(self, path: Path, field: str) -> Prototxt:
        try:
            return Prototxt(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"{field} must be a readable text file, got {exc}", field) from None

    def _files(self) -> _Files:
        block = self.spec.framework_options
        assert isinstance(block, CaffeSpec)  # the loader validated the spec's caffe block
        solver_path = self.spec.resolve(block.solver)
        if not solver_path.is_file():
            raise self._error(
                f"caffe.solver must be an existing file, got {block.solver!r} "
                f"({solver_path} is missing)",
                "caffe.solver",
                f"relative paths are relative to {self.spec.base_dir}",
            )
        solver = self._read(solver_path, "caffe.solver")
        for key in _OTHER_NETS:
            if solver.top(key) or key in solver.top_messages:
                raise self._error(
                    f"caffe.solver must name its net with net: (or leave it to caffe.net), "
                    f"got {key} in {self._shown(solver_path)}",
                    "caffe.solver",
                    "put the train and test layers in one net file, told apart with "
                    "include { phase: TRAIN } and include { phase: TEST }",
                )
        if block.net is not None:
            net_path = self.spec.resolve(block.net)
            net_field = "caffe.net"
            if not net_path.is_file():
                raise self._error(
                    f"caffe.net must be an existing file, got {block.net!r} "
                    f"({net_path} is missing)",
                    "caffe.net",
                    f"relative paths are relative to {self.spec.base_dir}",
                )
        else:
            named = [f.string_value() for f in solver.top("net")]
            if not named or not named[-1]:
                raise self._error(
                    "caffe.net must be set when the solver has no net: field, got nothing",
                    "caffe.net",
                    'add net: "net.prototxt" to the solver or caffe: {net: ...} to the spec',
                )
            net_path = (solver_path.parent / named[-1]).resolve()
            net_field = "caffe.solver"
            if not net_path.is_file():
                raise self._error(
                    f"caffe.solver's net must be an existing file, got {named[-1]!r} "
                    f"({net_path} is missing)",
                    "caffe.solver",
                    f"the solver's net: is relative to the solver's folder {solver_path.parent}; "
                    "or set caffe.net",
                )
        return _Files(solver_path, solver, net_path, self._read(net_path, net_field), net_field)

    def _check_values(self, name: str, param: Parameter, kind: str | None) -> None:
        values = _values(param)
        if kind is None:  # a placeholder: any scalar
            ok = values is None or all(isinstance(v, (bool, int, float, str)) for v in values)
            want = "a number, string or boolean for its placeholder"
        else:
            if name in _REPEATED and values is not None:
                values = [x for v in values for x in (v if isinstance(v, list) else [v])]
            ok = kind == "float" if values is None else all(_fits(v, kind) for v in values)
            want = f"{_KIND_WORDS[kind]} for the solver field {name}"
        if not ok:
            raise self._error(
                f"parameters.{name} must be {want}, got {param.describe()}", f"parameters.{name}"
            )

    def _lands_nowhere(self, name: str, files: _Files, used: set[str]) -> None:
        close = difflib.get_close_matches(name, sorted(set(SOLVER_FIELDS) | used), n=1)
        ways = (
            "a parameter reaches Caffe in one of two ways: named after a solver field "
            "(base_lr, momentum, weight_decay, max_iter, ...) it overrides that field, or "
            f"written as ${{{name}}} in {self._shown(files.solver_path)} or "
            f"{self._shown(files.net_path)} it is substituted there"
        )
        raise self._error(
            f"parameters.{name} must reach the solver or the net, got a name that is neither "
            "a solver field nor a placeholder",
            f"parameters.{name}",
            f"did you mean {close[0]!r}? otherwise, {ways}" if close else ways,
        )

    def _check_inputs(self, doc: Prototxt, path: Path, keys: Iterable[str], field: str) -> None:
        # Caught here, a missing data file is one clear error instead of a failed trial each.
        from sweeper.storage import is_s3_uri

        for entry in doc.fields:
            value = entry.string_value() if entry.key in keys else None
            if not value or "${" in value:
                continue  # a placeholder's path is known only per trial
            mapped = mount_path(value, self.spec.mounts)
            if mapped is not None:
                target_of, rest = mapped
                data = self.spec.data if isinstance(self.spec.data, str) else None
                if target_of != "data" or data is None or is_s3_uri(data):
                    # The trial's results, data staged only when it starts, or a data choice
                    # (each trial's own).
                    continue
                value = str(self.spec.resolve(data) / rest)
            target = path.parent / value  # an absolute value stays as it is
            if not target.exists():
                raise self._error(
                    f"{entry.key} in {self._shown(path)} line {doc.line_of(entry.start)} must be "
                    f"an existing path, got {value!r} ({target} is missing)",
                    field,
                    "create it before the sweep; relative paths in a prototxt are relative to "
                    f"its folder {path.parent}",
                )

    # -- trial side -------------------------------------------------------------------------

    def render(
        self,
        params: dict[str, Any],
        output_dir: Path,
        *,
        gpu: bool = False,
        seed: int | None = None,
        mounts: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the trial's ``solver.prototxt`` and ``net.prototxt`` into ``output_dir``.

        Args:
            params: The trial's parameters.
            output_dir: The trial's output folder (snapshots go there too).
            gpu: Whether the trial runs on GPUs (``solver_mode: GPU``), else CPU.
            seed: The trial's seed, the solver's ``random_seed`` unless it sets one.
            mounts: The spec's mount paths and the trial's folders they stand for.

        Returns:
            The rendered solver's path.
        """
        files = self._files()
        used = files.solver.names() | files.net.names()
        try:
            net_text = files.net.substitute(params)
            solver_text = files.solver.substitute(params)
        except KeyError as exc:
            raise TrialError(f"caffe placeholder ${{{exc.args[0]}}} has no parameter") from None
        net_text = rewrite(net_text, mounts or {})
        solver_text = rewrite(solver_text, mounts or {})
        net_text = self._absolute(net_text, files.net_path.parent, _NET_INPUTS)
        solver_text = self._absolute(solver_text, files.solver_path.parent, _SOLVER_INPUTS)

        for name, value in params.items():
            if name in SOLVER_FIELDS and name not in used:
                many = name in _REPEATED and isinstance(value, (list, tuple))
                solver_text = Prototxt(solver_text).set_top(
                    name, [format_value(v, name) for v in (value if many else [value])]
                )
        # Keep the solver's snapshot file name, in the trial's output folder.
        prefixes = [f.string_value() for f in Prototxt(solver_text).top("snapshot_prefix")]
        base = Path(prefixes[-1]).name if prefixes and prefixes[-1] else ""
        prefix = output_dir / (base or "snapshot")
        managed: dict[str, Any] = {
            "net": str(output_dir / NET_FILE),
            "snapshot_prefix": str(prefix),
            "solver_mode": "GPU" if gpu else "CPU",
        }
        if seed is not None and not Prototxt(solver_text).top("random_seed"):
            managed["random_seed"] = seed
        for key, value in managed.items():
            solver_text = Prototxt(solver_text).set_top(key, [format_value(value, key)])

        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / NET_FILE).write_text(net_text, encoding="utf-8")
        solver_path = output_dir / SOLVER_FILE
        solver_path.write_text(solver_text, encoding="utf-8")
        return solver_path

    @staticmethod
    def _absolute(text: str, folder: Path, keys: Iterable[str]) -> str:
        doc = Prototxt(text)
        found = doc.relative_paths(keys)
        return doc.replace_values({f: format_value(str(folder / v)) for f, v in found.items()})

    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        """Render the prototxt files and run ``caffe train``, reporting its log as metrics.

        Raises:
            TrialError: If ``caffe`` is not installed, or exits with a non-zero status.
        """
        caffe = shutil.which("caffe")
        if caffe is None:
            raise TrialError(INSTALL_HINT)
        mounts = trial_folders(self.spec.mounts, ctx.data_dir or ctx.output_dir, ctx.output_dir)
        solver = self.render(
            params, ctx.output_dir, gpu=bool(ctx.gpu_ids), seed=ctx.seed, mounts=mounts
        )
        cpus = str(max(1, int(self.spec.resources.cpus)))
        extra = {
            # Log to stderr only: glog would also write files into /tmp for every trial.
            "GLOG_logtostderr": "1",
            # Caffe's CPU math uses BLAS: size its threads to the trial's CPUs.
            "OMP_NUM_THREADS": cpus,
            "OPENBLAS_NUM_THREADS": cpus,
        }
        if ctx.gpu_ids:
            extra["CUDA_VISIBLE_DEVICES"] = ",".join(ctx.gpu_ids)
        # A retried or resumed trial continues from the last snapshot an earlier attempt saved;
        # a first attempt from the spec's weights or snapshot, if any.
        weights, snapshot = self._start_files()
        own = latest_snapshot(ctx.output_dir) if ctx.attempt > 1 else None
        if own is not None:
            weights, snapshot = [], own
        start = ctx.log_path.stat().st_size if ctx.log_path.exists() else 0
        process = TrialProcess(
            caffe_argv(caffe, solver, ctx.gpu_ids, snapshot, weights),
            cwd=ctx.output_dir,
            env=child_environment(extra),
            log_path=ctx.log_path,
            # The command line makes SIGINT end training after the iteration, with a snapshot.
            stop_signal=signal.SIGINT,
        )
        log = CaffeLog()

        def on_line(line: str) -> None:
            for step, metrics in log.feed(line):
                ctx.report(step=step, **metrics)

        try:
            status = process.run(on_line)
        except FileNotFoundError:
            raise TrialError(INSTALL_HINT) from None
        for step, metrics in log.close():
            ctx.report(step=step, **metrics)
        if status != 0:
            how = (
                f"was killed by {signal.Signals(-status).name}"
                if status < 0
                else f"exited with status {status}"
            )
            # Caffe says why in its glog F line (Check failed, Cannot use GPU in CPU-only
            # Caffe): that first, so the console's line for the trial shows it.
            cause = program_error(ctx.log_path, start)
            raise TrialError(f"{cause} (caffe train {how})" if cause else f"caffe train {how}")
