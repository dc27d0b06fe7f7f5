"""The bad-input contract for specs hypothesis makes up: built from the spec's own keys, with
values of every kind at every level. ``sweeper validate`` exits 0, or 2 with exactly one line,
never a traceback, and writes no file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from _hostile import BASE, TRAIN, Case
from test_hostile import problems, run_case

KEYS = [
    *BASE,
    "resources", "limits", "early_stopping", "storage", "requirements", "data", "results",
    "method", "metric", "mode", "trials", "seed", "concurrency", "sampler", "cpus", "gpus",
    "memory", "choice", "uniform", "loguniform", "int", "step", "log", "value", "max_steps",
    "reduction_factor", "grace_period", "max_failures", "max_duration", "lr", "x",
    "metrics", "constraints", "when", "name",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["grid", "random", "optuna", "min", "max", "python", "train.py:train", "1GiB"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


def mutated(base: dict, changes: dict) -> dict:
    spec = yaml.safe_load(yaml.safe_dump(base))
    for path, value in changes.items():
        node = spec
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node[last] = value
    return spec


PATHS = st.sampled_from(
    [
        "name", "framework", "entrypoint", "parameters", "parameters.lr", "parameters.x",
        "search", "search.method", "search.trials", "search.seed", "search.metric",
        "resources", "resources.gpus", "resources.memory", "limits", "early_stopping",
        "storage", "requirements", "data",
    ]
)  # fmt: skip


@settings(
    max_examples=int(os.environ.get("SWEEPER_TESTS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=st.dictionaries(PATHS, VALUES, min_size=1, max_size=3))
def test_a_generated_spec_keeps_the_contract(changes: dict, tmp_path_factory) -> None:
    text = yaml.safe_dump(mutated(BASE, changes), allow_unicode=True)
    folder = tmp_path_factory.mktemp("generated")
    case = Case(
        "generated", ["validate", "experiment.yml"], {"experiment.yml": text, "train.py": TRAIN}
    )
    outcome = run_case(case, folder)
    assert not problems(case, outcome), (text, outcome.stderr)
