"""The backend markers of ``tests/conftest.py``: a test whose backend is missing is skipped with
the reason here, and fails under ``CI=true``; so does a module that ``pytest.importorskip``s a
backend's module. Each case runs pytest in a subprocess with that conftest and
``SWEEPER_TESTS_WITHOUT`` hiding the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
MARKED = """
import pytest

@pytest.mark.tensorflow
def test_needs_tensorflow():
    pass

@pytest.mark.caffe
def test_needs_caffe():
    pass

def test_needs_nothing():
    pass
"""
IMPORTING = """
import pytest

tf = pytest.importorskip("tensorflow")

def test_uses_tensorflow():
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    tensorflow\n    caffe\n")
    pytester.makepyfile(test_marked=MARKED, test_importing=IMPORTING)
    monkeypatch.setenv("SWEEPER_TESTS_WITHOUT", "tensorflow caffe")
    monkeypatch.delenv("CI", raising=False)
    return pytester


def test_missing_backends_skip_with_the_reason(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines_random(
        [
            "*needs tensorflow: tensorflow is hidden by SWEEPER_TESTS_WITHOUT*",
            "*needs caffe: caffe is hidden by SWEEPER_TESTS_WITHOUT*",
            "*could not import 'tensorflow'*",
        ]
    )


def test_missing_backends_fail_in_ci(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "test_marked.py")
    result.assert_outcomes(passed=1, errors=2)  # failed in setup
    result.stdout.fnmatch_lines_random(
        [
            "*CI must run the tensorflow tests, but tensorflow is hidden by*",
            "*CI must run the caffe tests, but caffe is hidden by*",
        ]
    )
    # A module skipped by importorskip at collection is a collection error, which stops the run.
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "test_importing.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI must run the tensorflow tests, but *could not import*"])
