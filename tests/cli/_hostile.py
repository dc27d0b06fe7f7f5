"""A corpus of hostile but honest inputs: specs, manifests, settings, environment variables and
command lines that a user may type, each a :class:`Case` that ``tests/cli/test_hostile.py`` runs
through the CLI against the contract: exit 0, or exit 2 with one line on stderr and no
traceback; no new file; never a hang.

The corpus is data, built from a valid spec and a valid manifest by changing one thing at a time:
every key set to values of every wrong kind, numbers at and beyond their bounds, odd strings,
YAML's own traps, and the cases found by hand that must be refused (``expect="error"``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

TRAIN = "def train(params, ctx):\n    ctx.report(step=1, loss=float(params['lr']))\n"

BASE: dict[str, Any] = {
    "name": "hostile",
    "framework": "python",
    "entrypoint": "train.py:train",
    "search": {"method": "random", "metric": "loss", "mode": "min", "trials": 3, "seed": 1},
    "parameters": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "epochs": 2},
}

MANIFEST: dict[str, Any] = {
    "name": "hostile-manifest",
    "version": "1.0",
    "gpus": 0,
    "cpus": 1,
    "memory": "1Gb",
    "learners": 1,
    "data_stores": [
        {
            "id": "store",
            "type": "mount_cos",
            "training_data": {"container": "hostile_data"},
            "training_results": {"container": "hostile_results"},
            "connection": {
                "auth_url": "http://127.0.0.1:9",
                "user_name": "AKIAHOSTILE",
                "password": "hostile-secret-key",
            },
        }
    ],
    "framework": {"name": "custom", "version": "1", "command": "python3 train.py"},
}

# Values of every kind, for keys that expect another.
WRONG_KINDS: dict[str, Any] = {
    "null": None,
    "empty": "",
    "text": "text",
    "true": True,
    "zero": 0,
    "negative": -1,
    "huge_int": 2**70,
    "inf": float("inf"),
    "nan": float("nan"),
    "float": 0.5,
    "list": [1, 2],
    "empty_list": [],
    "mapping": {"a": 1},
    "empty_mapping": {},
    "newline": "x\n",
    "control": "a\x07b",
    "unicode": "\u00e9\u4e2d\U0001f600",
    "long": "y" * 5000,
}

SPEC_KEYS = [
    "name",
    "description",
    "framework",
    "entrypoint",
    "parameters",
    "parameters.lr",
    "parameters.lr.loguniform",
    "search",
    "search.method",
    "search.metric",
    "search.mode",
    "search.trials",
    "search.seed",
    "search.concurrency",
    "search.sampler",
    "resources",
    "resources.cpus",
    "resources.gpus",
    "resources.memory",
    "data",
    "results",
    "requirements",
    "limits",
    "limits.max_failures",
    "limits.max_duration",
    "limits.max_gpu_hours",
    "early_stopping",
    "early_stopping.method",
    "early_stopping.max_steps",
    "early_stopping.reduction_factor",
    "early_stopping.metric",
    "search.metrics",
    "search.constraints",
    "parameters.lr.when",
    "schedule",
    "schedule.mutations",
    "storage",
    "storage.endpoint_url",
]
MANIFEST_KEYS = [
    "name",
    "gpus",
    "cpus",
    "memory",
    "learners",
    "data_stores",
    "data_stores.0",
    "data_stores.0.connection",
    "data_stores.0.connection.auth_url",
    "data_stores.0.training_data",
    "framework",
    "framework.name",
    "framework.command",
]


@dataclass
class Case:
    """One input and the command that reads it.

    Attributes:
        name: Says what the case is (the test's id).
        args: The ``sweeper`` command line, run in a folder holding ``files``.
        files: File name to text.
        env: Environment variables set for the run.
        expect: ``"error"``: must exit 2 with one line; ``"any"``: exit 0 or that.
        klass: The issue's class of the input (for the tally of unclean cases).
    """

    name: str
    args: list[str]
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    expect: str = "any"
    klass: str = "kinds"
    exit_codes: tuple[int, ...] = (0, 2)


def _set(data: Any, path: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if not isinstance(node, (dict, list)):
            return None
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def spec_case(name: str, data: Any, *, command: str = "validate", **kw: Any) -> Case:
    text = data if isinstance(data, str) else dump(data)
    return Case(
        name, [command, "experiment.yml"], {"experiment.yml": text, "train.py": TRAIN}, **kw
    )


def manifest_case(name: str, data: Any, *, command: str = "validate", **kw: Any) -> Case:
    text = data if isinstance(data, str) else dump(data)
    files = {"manifest.yml": text, "train.py": "print('hi')\n"}
    return Case(name, [command, "manifest.yml"], files, klass=kw.pop("klass", "manifest"), **kw)


def _kind_cases() -> Iterator[Case]:
    for key in SPEC_KEYS:
        for label, value in WRONG_KINDS.items():
            data = _set(BASE, key, value)
            if data is not None:
                yield spec_case(f"spec {key}={label}", data)
    for key in MANIFEST_KEYS:
        for label, value in WRONG_KINDS.items():
            data = _set(MANIFEST, key, value)
            if data is not None:
                yield manifest_case(f"manifest {key}={label}", data)
                if label in ("text", "list", "mapping", "inf"):
                    yield manifest_case(f"convert {key}={label}", data, command="convert")


def _must_fail() -> Iterator[Case]:
    """Inputs found by hand that an honest tool refuses."""
    bad: dict[str, Any] = {
        "resources.gpus=inf": _set(BASE, "resources.gpus", float("inf")),
        "resources.cpus=inf": _set(BASE, "resources.cpus", float("inf")),
        "resources.gpus=true": _set(BASE, "resources.gpus", True),
        "resources.cpus=true": _set(BASE, "resources.cpus", True),
        "resources.memory absurd": _set(BASE, "resources.memory", "99999999999999TiB"),
        "search.seed negative": _set(BASE, "search.seed", -1),
        "search.seed above 2**32-1": _set(BASE, "search.seed", 2**32),
        "search.trials true": _set(BASE, "search.trials", True),
        "name with a newline": _set(BASE, "name", "hostile\n"),
        "parameter name with a newline": _set(BASE, "parameters", {"lr\n": 0.1}),
        "parameter name with a control character": _set(BASE, "parameters", {"l\x07r": 0.1}),
        "description with a NUL": _set(BASE, "description", "a\x00b"),
        "metric with a newline": _set(BASE, "search.metric", "loss\n"),
        "grid of a billion points": {
            **BASE,
            "search": {"method": "grid", "metric": "loss", "mode": "min"},
            "parameters": {f"p{i}": {"int": [1, 1000]} for i in range(3)},
        },
        "uniform grid with a step of 1e-12": {
            **BASE,
            "search": {"method": "grid", "metric": "loss", "mode": "min"},
            "parameters": {"x": {"uniform": [0, 1], "step": 1.0e-12}},
        },
        "hyperband with a reduction factor of 1.0000000001": {
            **BASE,
            "early_stopping": {
                "method": "hyperband",
                "max_steps": 1000,
                "reduction_factor": 1.0000000001,
            },
        },
        "int range of 10**30 with a step in a grid": {
            **BASE,
            "search": {"method": "grid", "metric": "loss", "mode": "min"},
            "parameters": {"n": {"int": [0, 10**30], "step": 1}},
        },
    }
    for name, data in bad.items():
        yield spec_case(name, data, expect="error", klass="accepted")
    for command in ("validate", "plan"):
        yield spec_case(
            f"{command}: grid of a billion points",
            bad["grid of a billion points"],
            command=command,
            expect="error",
            klass="hangs",
        )
    yield spec_case(
        "duplicate key",
        "name: a\nname: b\n" + dump({k: v for k, v in BASE.items() if k != "name"}),
        expect="error",
        klass="yaml",
    )
    yield spec_case(
        "duplicate parameter",
        dump(BASE) + "  lr: 0.5\n",
        expect="error",
        klass="yaml",
    )
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = chr(ord("a") + i - 1)
        here = chr(ord("a") + i)
        laughs.append(f"{here}: &{here} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    yield spec_case("billion laughs", "\n".join(laughs) + "\n", expect="error", klass="hangs")
    yield spec_case(
        "billion laughs in a choice",
        dump({k: v for k, v in BASE.items() if k != "parameters"})
        + "laughs:\n"
        + "".join(f"  {line}\n" for line in laughs)
        + "parameters:\n  x: {choice: *l}\n",
        expect="error",
        klass="hangs",
    )
    yield spec_case(
        "a YAML tag", "name: !!python/object:os.system x\n", expect="error", klass="yaml"
    )
    yield spec_case("an empty file", "", expect="error", klass="yaml")
    yield spec_case("a list", "- a\n- b\n", expect="error", klass="yaml")
    yield spec_case("a NUL byte", "name: a\x00\n", expect="error", klass="yaml")
    yield spec_case("tabs", "name:\ta\n\tframework: python\n", expect="error", klass="yaml")
    yield spec_case("a BOM", "\ufeff" + dump(BASE))
    yield spec_case("CRLF", dump(BASE).replace("\n", "\r\n"))
    yield spec_case("a merge key", "x: &x {method: grid}\n" + dump(BASE))
    yield spec_case("a key that is a number", dump({**BASE, "parameters": {1: 2}}), expect="error")
    for key, value in {
        "early_stopping": {"method": "asha", "max_steps": 9, "patience": 3},
        "command": 5,
        "requirements": 5,
        "requirements ": [5],
        "limits": {"max_duration": [1]},
    }.items():
        yield spec_case(f"garbled: {key}", _set(BASE, key.strip(), value), expect="error")
    yield spec_case("a key that is null", "? null\n: 1\n" + dump(BASE), expect="error")
    yield from _broader_search_cases()
    yield from _iteration_cases()
    manifest_bad: dict[str, Any] = {
        "unknown framework name": _set(MANIFEST, "framework.name", "mxnet-9000"),
        "connection as a string": _set(MANIFEST, "data_stores.0.connection", "http://x"),
        "data_stores as a string": _set(MANIFEST, "data_stores", "s3"),
        "gpus infinite": _set(MANIFEST, "gpus", float("inf")),
        "memory absurd": _set(MANIFEST, "memory", "99999999999999TiB"),
        "unknown placeholder": _set(MANIFEST, "framework.command", "python3 train.py ${nope}"),
    }
    for name, data in manifest_bad.items():
        yield manifest_case(name, data, expect="error", klass="manifest")
        yield manifest_case(f"convert: {name}", data, command="convert", expect="error")

    def hpo(*options: dict[str, Any]) -> dict[str, Any]:
        return {
            **MANIFEST,
            "hyper_parameters_optimization": {
                "method": {"name": "random", "parameters": list(options)},
                "hyper_parameters": [
                    {"name": "lr", "double_range": {"min_value": 0.1, "max_value": 0.5}}
                ],
            },
        }

    objective = {"name": "objective", "string_value": "accuracy"}
    yield manifest_case(
        "hpo: a valid one", hpo(objective, {"name": "num_optimizer_steps", "int_value": 3})
    )
    hpo_bad = {
        "maximize_or_minimize sideways": hpo(
            objective, {"name": "maximize_or_minimize", "string_value": "sideways"}
        ),
        "num_optimizer_steps not a number": hpo(
            objective, {"name": "num_optimizer_steps", "int_value": "many"}
        ),
        "num_optimizer_steps negative": hpo(
            objective, {"name": "num_optimizer_steps", "int_value": -3}
        ),
        "method parameters a string": _set(
            hpo(objective), "hyper_parameters_optimization.method.parameters", "x"
        ),
        "method a list": _set(hpo(objective), "hyper_parameters_optimization.method", [1]),
        "hyper_parameters a mapping": _set(
            hpo(objective), "hyper_parameters_optimization.hyper_parameters", {"a": 1}
        ),
        "a range that is a list": _set(
            hpo(objective), "hyper_parameters_optimization.hyper_parameters.0.double_range", [1, 2]
        ),
        "values that are a string": _set(
            hpo(objective),
            "hyper_parameters_optimization.hyper_parameters.0",
            {"name": "lr", "double_values": "0.1"},
        ),
        "an inverted range": _set(
            hpo(objective),
            "hyper_parameters_optimization.hyper_parameters.0.double_range",
            {"min_value": 0.5, "max_value": 0.1},
        ),
    }
    for name, data in hpo_bad.items():
        yield manifest_case(f"hpo: {name}", data, expect="error")
        yield manifest_case(f"convert hpo: {name}", data, command="convert", expect="error")


def _broader_search_cases() -> Iterator[Case]:
    """Conditional spaces, objectives, constraints, data choices and schedules that must be
    refused in one line (a cycle, an unbounded bound, a dataset twice, ...), and deep ones
    that must load without recursing."""
    opt = {"opt": {"choice": ["adam", "sgd"]}}
    two = [{"name": "loss", "mode": "min"}, {"name": "size", "mode": "min"}]
    pbt = {"method": "pbt", "perturbation_interval": 2, "mutations": {"lr": {"uniform": [0, 1]}}}
    bad: dict[str, Any] = {
        "when cycle": _set(BASE, "parameters", {
            "a": {"choice": [1, 2], "when": {"b": 1}}, "b": {"choice": [1, 2], "when": {"a": 1}},
        }),
        "when on a constant": _set(BASE, "parameters.epochs", {"value": 2, "when": {"lr": 0.1}}),
        "when value never taken": _set(BASE, "parameters", {
            **opt, "m": {"uniform": [0, 1], "when": {"opt": "rmsprop"}},
        }),
        "when value a mapping": _set(BASE, "parameters", {
            **opt, "m": {"uniform": [0, 1], "when": {"opt": {"x": 1}}},
        }),
        "when empty": _set(BASE, "parameters", {**opt, "m": {"uniform": [0, 1], "when": {}}}),
        "metrics and another metric": _set(BASE, "search.metrics", two[::-1]),
        "metrics twice the same": _set(
            _set(BASE, "search", {"method": "random", "trials": 3}), "search.metrics", [two[0]] * 2
        ),
        "metrics empty": _set(_set(BASE, "search", {"method": "random", "trials": 3}),
                              "search.metrics", []),
        "constraint bound 1e999": _set(BASE, "search.constraints", ["size <= 1e999"]),
        "constraint bound nan": _set(BASE, "search.constraints", ["size <= nan"]),
        "constraint with two operators": _set(BASE, "search.constraints", ["1 < size < 5"]),
        "constraint on a parameter": _set(BASE, "search.constraints", ["lr < 0.01"]),
        "data choice twice": _set(BASE, "data", {"choice": ["./a", "./a"]}),
        "data choice empty": _set(BASE, "data", {"choice": []}),
        "data choice of numbers": _set(BASE, "data", {"choice": [1, 2]}),
        "schedule with optuna": _set(
            _set(BASE, "search.method", "optuna"), "schedule", pbt
        ),
        "schedule of a parameter nobody has": _set(
            BASE, "schedule", {**pbt, "mutations": {"momentum": {"uniform": [0, 1]}}}
        ),
        "schedule interval 0": _set(BASE, "schedule", {**pbt, "perturbation_interval": 0}),
        "schedule quantile 0.9": _set(BASE, "schedule", {**pbt, "quantile_fraction": 0.9}),
    }  # fmt: skip
    for name, data in bad.items():
        yield spec_case(f"broader: {name}", data, expect="error", klass="search")
    chain: dict[str, Any] = {"a0": {"choice": [1, 2]}}
    chain.update({f"a{i}": {"choice": [1, 2], "when": {f"a{i - 1}": 1}} for i in range(1, 2000)})
    grid = {"method": "grid", "metric": "loss", "mode": "min"}
    backwards = dict(reversed(list(chain.items())))
    for label, params in (("in order", chain), ("declared backwards", backwards)):
        data = {**_set(BASE, "search", grid), "parameters": params}
        yield spec_case(f"broader: a chain of 2,000 conditions {label}", data, klass="search")


def _iteration_cases() -> Iterator[Case]:
    """Warm starts, initial points and defaults written wrong: each refused in one line."""
    lr = {"loguniform": [1e-4, 1e-1]}
    bad: dict[str, Any] = {
        "initial_points a mapping": _set(BASE, "search.initial_points", {"lr": 0.01}),
        "initial_points of text": _set(BASE, "search.initial_points", ["lr=0.01"]),
        "initial point NaN": _set(BASE, "search.initial_points", [{"lr": float("nan")}]),
        "initial point 1e999": _set(BASE, "search.initial_points", [{"lr": float("inf")}]),
        "initial point a list": _set(BASE, "search.initial_points", [{"lr": [0.01]}]),
        "initial point of a constant": _set(BASE, "search.initial_points", [{"epochs": 3}]),
        "default NaN": _set(BASE, "parameters.lr", {**lr, "default": float("nan")}),
        "default a mapping": _set(BASE, "parameters.lr", {**lr, "default": {}}),
        "warm_start a number": _set(BASE, "search.warm_start", 3),
        "warm_start of lists": _set(BASE, "search.warm_start", [["a"]]),
        "warm_start empty text": _set(BASE, "search.warm_start", [""]),
        "skip_evaluated a list": _set(BASE, "search.skip_evaluated", [True]),
    }  # fmt: skip
    for name, data in bad.items():
        yield spec_case(f"iteration: {name}", data, expect="error", klass="search")
    missing = _set(BASE, "search.warm_start", ["no-such-sweep"])
    yield spec_case("iteration: a warm start from no sweep, validated", missing)
    yield spec_case(
        "iteration: plan looks the warm start up", missing, command="plan", expect="error"
    )


def _settings_cases() -> Iterator[Case]:
    spec = dump(BASE)
    tomls = {
        "not TOML": "[ray\n",
        "an unknown section": "[nope]\nx = 1\n",
        "an unknown key": "[ray]\nadress = 'auto'\n",
        "a wrong kind": "[ray]\nnum_cpus = 'many'\n",
        "a NUL": "[ray]\x00\n",
    }
    for name, text in tomls.items():
        yield Case(
            f"sweeper.toml: {name}",
            ["list"],
            {"experiment.yml": spec, "train.py": TRAIN, "sweeper.toml": text},
            expect="error",
            klass="settings",
        )
    envs = {
        "an unknown SWEEPER_ variable": {"SWEEPER_RAY_ADRESS": "auto"},
        "an unknown SWEEPER_ section": {"SWEEPER_NOPE_X": "1"},
        "a wrong kind": {"SWEEPER_RAY_NUM_CPUS": "many"},
    }
    for name, env in envs.items():
        yield Case(
            f"environment: {name}",
            ["list"],
            {"experiment.yml": spec, "train.py": TRAIN},
            env=env,
            expect="error",
            klass="settings",
        )


def _cli_cases() -> Iterator[Case]:
    spec = {"experiment.yml": dump(BASE), "train.py": TRAIN}
    for args in (
        ["validate"],
        ["validate", "missing.yml"],
        ["validate", "."],
        ["run"],
        ["run", "missing.yml"],
        ["plan", "missing.yml"],
        ["convert", "missing.yml"],
        ["status", "no-such-sweep"],
        ["show", "no-such-sweep"],
        ["export", "no-such-sweep"],
        ["logs", "no-such-sweep", "1"],
        ["plot", "no-such-sweep"],
        ["stop", "no-such-sweep"],
        ["sync", "no-such-sweep"],
        ["resume", "no-such-sweep"],
        ["list", "--config", "missing.toml"],
        ["status", ""],
        ["status", "../../etc"],
        ["logs", "x", "../../etc/passwd"],
    ):
        yield Case(
            f"cli: sweeper {' '.join(args)}",
            args,
            dict(spec),
            expect="error",
            klass="cli",
            exit_codes=(1, 2),
        )


def cases() -> list[Case]:
    """The whole corpus."""
    found = [*_kind_cases(), *_must_fail(), *_settings_cases(), *_cli_cases()]
    names = [case.name for case in found]
    assert len(names) == len(set(names)), "case names must be unique"
    return found


if __name__ == "__main__":  # python tests/cli/_hostile.py: the corpus' size by class
    from collections import Counter

    print(json.dumps(Counter(case.klass for case in cases()), indent=1))
