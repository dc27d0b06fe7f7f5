"""``load_settings``: defaults, ``sweeper.toml``, ``--config`` and ``SWEEPER_*`` overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import ConfigError, SpecError
from sweeper.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = "ray, mlflow, results, s3, limits, console"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_error(*args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    return info.value


def test_defaults_without_a_file(in_tmp: Path) -> None:
    settings = load_settings(environ={})
    assert settings.source is None
    assert settings.ray.address == ""
    assert settings.ray.num_cpus is None
    assert settings.ray.num_gpus is None
    assert settings.mlflow.tracking_uri == "sqlite:///mlflow.db"
    assert settings.mlflow.experiment == ""
    assert settings.results.dir == "results"
    assert settings.s3.endpoint_url == ""
    assert settings.s3.region == ""
    assert settings.s3.addressing_style == "auto"
    assert settings.limits.max_concurrency is None
    assert settings.limits.max_gpus is None
    assert settings == Settings()


def test_source_is_not_dumped(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[results]\ndir = 'out'\n")
    settings = load_settings(environ={})
    assert "source" not in settings.model_dump()
    assert settings.model_dump()["results"] == {"dir": "out"}


def test_sweeper_toml_in_cwd_is_picked_up(in_tmp: Path) -> None:
    write(
        in_tmp / "sweeper.toml",
        """\
[ray]
address = "head:6379"
num_cpus = 8
num_gpus = 2

[mlflow]
tracking_uri = "http://mlflow:5000"
experiment = "team"

[results]
dir = "/data/results"

[s3]
endpoint_url = "http://minio:9000"
region = "eu-west-1"
addressing_style = "path"

[limits]
max_concurrency = 4
max_gpus = 1
""",
    )
    settings = load_settings(environ={})
    assert settings.source == "sweeper.toml"
    assert settings.ray.address == "head:6379"
    assert (settings.ray.num_cpus, settings.ray.num_gpus) == (8, 2)
    assert settings.mlflow.tracking_uri == "http://mlflow:5000"
    assert settings.mlflow.experiment == "team"
    assert settings.results.dir == "/data/results"
    assert settings.s3.endpoint_url == "http://minio:9000"
    assert settings.s3.region == "eu-west-1"
    assert settings.s3.addressing_style == "path"
    assert settings.limits.max_concurrency == 4
    assert settings.limits.max_gpus == 1


def test_partial_file_keeps_other_defaults(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[mlflow]\ntracking_uri = 'file:./mlruns'\n")
    settings = load_settings(environ={})
    assert settings.mlflow.tracking_uri == "file:./mlruns"
    assert settings.mlflow.experiment == ""
    assert settings.results.dir == "results"


def test_empty_file(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "")
    settings = load_settings(environ={})
    assert settings.source == "sweeper.toml"
    assert settings.model_dump() == Settings().model_dump()


def test_config_path_wins_over_cwd_file(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[ray]\naddress = 'from-cwd'\n[results]\ndir = 'cwd'\n")
    other = write(in_tmp / "other.toml", "[ray]\naddress = 'auto'\n")
    settings = load_settings(other, environ={})
    assert settings.source == str(other)
    assert settings.ray.address == "auto"
    # Files are not merged: the cwd file is ignored entirely.
    assert settings.results.dir == "results"


def test_config_path_as_string(in_tmp: Path) -> None:
    write(in_tmp / "conf.toml", "[results]\ndir = 'x'\n")
    settings = load_settings("conf.toml", environ={})
    assert settings.source == "conf.toml"
    assert settings.results.dir == "x"


def test_missing_config_file(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "")
    error = config_error("nope.toml", environ={})
    assert str(error) == "config file must exist, got 'nope.toml' (--config)"
    assert error.field == "--config"
    assert error.exit_code == 2


def test_config_that_is_a_directory(in_tmp: Path) -> None:
    (in_tmp / "conf").mkdir()
    assert str(config_error("conf", environ={})) == "config file must exist, got 'conf' (--config)"


def test_config_error_is_a_spec_error() -> None:
    error = ConfigError("x must be y, got z")
    assert isinstance(error, SpecError)
    assert isinstance(error, ValueError)
    assert error.exit_code == 2


def test_invalid_toml(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[ray\naddress = 1\n")
    error = config_error(environ={})
    assert str(error) == (
        "config must be valid TOML, got Expected ']' at the end of a table declaration "
        "(at line 1, column 5) (sweeper.toml)"
    )
    assert error.file == "sweeper.toml"


def test_config_not_utf8(in_tmp: Path) -> None:
    (in_tmp / "sweeper.toml").write_bytes(b"\xff\xfe")
    error = config_error(environ={})
    assert str(error).startswith("config must be valid TOML, got 'utf-8' codec can't decode")
    assert error.file == "sweeper.toml"


def test_unknown_section(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[mlfow]\ntracking_uri = 'x'\n")
    error = config_error(environ={})
    assert error.message.startswith(f"keys must be one of {SECTIONS}")
    assert error.message.endswith(", got 'mlfow'")
    assert error.file == "sweeper.toml"
    assert error.field == "mlfow"
    assert error.hint == "did you mean 'mlflow'?"


def test_unknown_section_lists_only_sections(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[mlfow]\n")
    assert str(config_error(environ={})) == (
        f"keys must be one of {SECTIONS}, got 'mlfow' (sweeper.toml: mlfow); did you mean 'mlflow'?"
    )


def test_source_key_is_rejected(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "source = '/elsewhere'\n")
    config_error(environ={})


def test_unknown_key(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[mlflow]\ntracking_ur = 'x'\n")
    error = config_error(environ={})
    assert str(error) == (
        "mlflow keys must be one of tracking_uri, experiment, log_artifacts, got 'tracking_ur' "
        "(sweeper.toml: mlflow.tracking_ur); did you mean 'tracking_uri'?"
    )


def test_unknown_key_without_close_match(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[ray]\nzzz = 1\n")
    error = config_error(environ={})
    assert str(error) == (
        "ray keys must be one of address, num_cpus, num_gpus, dashboard, dashboard_port, "
        "got 'zzz' (sweeper.toml: ray.zzz); remove it"
    )


def test_unknown_key_in_a_config_path(in_tmp: Path) -> None:
    path = write(in_tmp / "conf.toml", "[results]\ndirs = 'x'\n")
    error = config_error(path, environ={})
    assert str(error) == (
        f"results keys must be one of dir, got 'dirs' ({path}: results.dirs); did you mean 'dir'?"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[ray]\nnum_cpus = 'four'", "ray.num_cpus must be an integer, got 'four'"),
        ("[ray]\nnum_cpus = 1.5", "ray.num_cpus must be an integer, got 1.5"),
        ("[ray]\nnum_cpus = 0", "ray.num_cpus must be >= 1, got 0"),
        ("[ray]\nnum_gpus = -1", "ray.num_gpus must be >= 0, got -1"),
        ("[mlflow]\ntracking_uri = 5", "mlflow.tracking_uri must be a string, got 5"),
        ("[limits]\nmax_concurrency = 0", "limits.max_concurrency must be >= 1, got 0"),
        ("[limits]\nmax_gpus = 0", "limits.max_gpus must be >= 1, got 0"),
        ("[limits]\nmax_gpus = 1.5", "limits.max_gpus must be an integer, got 1.5"),
        ("ray = 3", "ray must be a mapping, got 3"),
    ],
)
def test_wrong_type_or_value(in_tmp: Path, toml: str, message: str) -> None:
    write(in_tmp / "sweeper.toml", toml + "\n")
    error = config_error(environ={})
    field = message.split(" ", 1)[0]
    assert str(error) == f"{message} (sweeper.toml: {field})"
    assert error.field == field


def test_bad_addressing_style(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[s3]\naddressing_style = 'foo'\n")
    error = config_error(environ={})
    assert error.field == "s3.addressing_style"
    assert error.file == "sweeper.toml"
    assert "'foo'" in error.message


def test_bad_addressing_style_message_style(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[s3]\naddressing_style = 'foo'\n")
    error = config_error(environ={})
    assert error.message.startswith("s3.addressing_style must be ")


# --- Environment -------------------------------------------------------------------------------


def test_env_overrides_single_keys(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[mlflow]\ntracking_uri = 'file:./mlruns'\nexperiment = 'e'\n")
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": "sqlite:///other.db",
            "SWEEPER_RAY_NUM_CPUS": "4",
            "SWEEPER_S3_ENDPOINT_URL": "http://minio:9000",
            "SWEEPER_LIMITS_MAX_CONCURRENCY": "3",
            "SWEEPER_LIMITS_MAX_GPUS": "2",
            "HOME": "/root",
        }
    )
    assert settings.mlflow.tracking_uri == "sqlite:///other.db"
    assert settings.mlflow.experiment == "e"  # the file's other key is kept
    assert settings.ray.num_cpus == 4
    assert settings.s3.endpoint_url == "http://minio:9000"
    assert settings.limits.max_concurrency == 3
    assert settings.limits.max_gpus == 2
    assert settings.source == "sweeper.toml"


def test_env_without_a_file(in_tmp: Path) -> None:
    settings = load_settings(environ={"SWEEPER_RESULTS_DIR": "/tmp/out"})
    assert settings.results.dir == "/tmp/out"
    assert settings.source is None


def test_env_overrides_a_config_path(in_tmp: Path) -> None:
    path = write(in_tmp / "c.toml", "[ray]\naddress = 'auto'\n")
    settings = load_settings(path, environ={"SWEEPER_RAY_ADDRESS": "h:6379"})
    assert settings.ray.address == "h:6379"


def test_ray_client_address_is_refused(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[ray]\naddress = 'ray://head:10001'\n")
    error = config_error(environ={})
    assert str(error).startswith(
        "ray.address must be auto or HOST:PORT (Ray's GCS), got 'ray://head:10001' "
        "(sweeper.toml: ray.address); Ray Client runs Tune's control loop on the head"
    )
    assert "ray job submit --address http://HOST:8265 --working-dir ." in str(error)


def test_other_url_address_is_refused(in_tmp: Path) -> None:
    error = config_error(environ={"SWEEPER_RAY_ADDRESS": "http://head:8265"})
    assert str(error) == (
        "ray.address must be auto or HOST:PORT (Ray's GCS), got 'http://head:8265' "
        "(environment: SWEEPER_RAY_ADDRESS); e.g. auto or 10.0.0.1:6379"
    )


def test_checkpoint_interval_must_not_be_negative(in_tmp: Path) -> None:
    error = config_error(environ={"SWEEPER_S3_CHECKPOINT_INTERVAL": "-1"})
    assert str(error).startswith("s3.checkpoint_interval must be >= 0, got '-1'")


def test_log_artifacts_must_be_a_boolean(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[mlflow]\nlog_artifacts = 'sometimes'\n")
    error = config_error(environ={})
    assert str(error).startswith("mlflow.log_artifacts must be true or false, got 'sometimes'")


def test_os_environ_is_the_default(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPER_MLFLOW_EXPERIMENT", "from-env")
    assert load_settings().mlflow.experiment == "from-env"


def test_other_variables_are_ignored(in_tmp: Path) -> None:
    settings = load_settings(environ={"RAY_ADDRESS": "x", "sweeper_ray_address": "y"})
    assert settings.ray.address == ""


def test_unknown_env_key(in_tmp: Path) -> None:
    error = config_error(environ={"SWEEPER_MLFLOW_TRACKNG_URI": "x"})
    assert str(error) == (
        "SWEEPER_MLFLOW_TRACKNG_URI must name a key of [mlflow] "
        "(tracking_uri, experiment, log_artifacts), got 'trackng_uri' "
        "(environment: SWEEPER_MLFLOW_TRACKNG_URI)"
    )
    assert error.file == "environment"
    assert error.field == "SWEEPER_MLFLOW_TRACKNG_URI"


def test_invalid_env_value_without_a_file(in_tmp: Path) -> None:
    error = config_error(environ={"SWEEPER_RAY_NUM_CPUS": "many"})
    assert str(error) == (
        "ray.num_cpus must be an integer, got 'many' (environment: SWEEPER_RAY_NUM_CPUS)"
    )


def test_invalid_env_value_names_the_environment(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[ray]\naddress = 'auto'\n")
    error = config_error(environ={"SWEEPER_RAY_NUM_CPUS": "many"})
    assert error.file == "environment"


def test_empty_env_value_resets_an_optional_number(in_tmp: Path) -> None:
    write(
        in_tmp / "sweeper.toml",
        "[ray]\nnum_cpus = 8\nnum_gpus = 1\n[limits]\nmax_concurrency = 2\n",
    )
    settings = load_settings(
        environ={"SWEEPER_RAY_NUM_CPUS": "", "SWEEPER_LIMITS_MAX_CONCURRENCY": ""}
    )
    assert settings.ray.num_cpus is None
    assert settings.limits.max_concurrency is None
    assert settings.ray.num_gpus == 1


def test_env_max_gpus_overrides_the_file_and_can_be_unset(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[limits]\nmax_gpus = 4\n")
    assert load_settings(environ={}).limits.max_gpus == 4
    assert load_settings(environ={"SWEEPER_LIMITS_MAX_GPUS": "1"}).limits.max_gpus == 1
    assert load_settings(environ={"SWEEPER_LIMITS_MAX_GPUS": ""}).limits.max_gpus is None


def test_invalid_env_max_gpus(in_tmp: Path) -> None:
    error = config_error(environ={"SWEEPER_LIMITS_MAX_GPUS": "0"})
    assert str(error) == (
        "limits.max_gpus must be >= 1, got '0' (environment: SWEEPER_LIMITS_MAX_GPUS)"
    )


def test_unknown_limits_key_lists_max_gpus(in_tmp: Path) -> None:
    write(in_tmp / "sweeper.toml", "[limits]\nmax_gpu = 1\n")
    assert str(config_error(environ={})) == (
        "limits keys must be one of max_concurrency, max_gpus, got 'max_gpu' "
        "(sweeper.toml: limits.max_gpu); did you mean 'max_gpus'?"
    )


def test_empty_env_value_for_a_string_key(in_tmp: Path) -> None:
    settings = load_settings(environ={"SWEEPER_RAY_ADDRESS": ""})
    assert settings.ray.address == ""


def test_environ_is_not_modified(in_tmp: Path) -> None:
    environ = {"SWEEPER_RAY_ADDRESS": "auto"}
    load_settings(environ=environ)
    assert environ == {"SWEEPER_RAY_ADDRESS": "auto"}


# --- The repository's own sweeper.toml -------------------------------------------------------


def test_repository_sweeper_toml_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "sweeper.toml"
    if not path.is_file():
        pytest.skip(f"{path} does not exist (yet); nothing to check")
    monkeypatch.chdir(ROOT)
    settings = load_settings(path, environ={})
    assert settings.source == str(path)
    # The file documents every key with its built-in default value.
    assert settings.model_dump() == Settings().model_dump()


def test_dashboard_and_progress_settings(in_tmp):
    write(in_tmp / "sweeper.toml", "[ray]\ndashboard = false\n[console]\nprogress_interval = 5\n")
    settings = load_settings()
    assert settings.ray.dashboard is False and settings.ray.dashboard_port == 8265
    assert settings.console.progress_interval == 5.0
    env = load_settings(
        environ={"SWEEPER_RAY_DASHBOARD": "true", "SWEEPER_RAY_DASHBOARD_PORT": "9000"}
    )
    assert env.ray.dashboard is True and env.ray.dashboard_port == 9000


def test_an_unknown_section_in_the_environment_is_named(in_tmp) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SWEEPER_RAYY_ADDRESS": "auto"})
    assert str(caught.value).startswith(
        "SWEEPER_RAYY_ADDRESS must name a setting SWEEPER_<SECTION>_<KEY> of a section "
    )
    assert str(caught.value).endswith(
        "got 'rayy_address' (environment: SWEEPER_RAYY_ADDRESS); did you mean SWEEPER_RAY_...?"
    )


def test_the_variables_sweeper_sets_for_trials_are_not_settings(in_tmp) -> None:
    environ = {"SWEEPER_TRIAL": "trial-0001", "SWEEPER_SWEEP": "s", "SWEEPER_PARAM_LR": "0.1"}
    assert load_settings(environ=environ) == load_settings(environ={})


def test_a_settings_origin_is_the_variable_the_file_or_the_default(in_tmp) -> None:
    (in_tmp / "sweeper.toml").write_text("[ray]\nnum_cpus = 2\n", encoding="utf-8")
    settings = load_settings(environ={"SWEEPER_RAY_ADDRESS": "10.0.0.1:6379"})
    assert settings.origin("ray", "address") == "environment: SWEEPER_RAY_ADDRESS"
    assert settings.origin("ray", "num_cpus") == "sweeper.toml: ray.num_cpus"
    assert load_settings(environ={}).origin("mlflow", "tracking_uri") == (
        "sweeper.toml: mlflow.tracking_uri"
    )
    (in_tmp / "sweeper.toml").unlink()
    assert load_settings(environ={}).origin("mlflow", "tracking_uri") == (
        "default: mlflow.tracking_uri"
    )
