"""The CLI's knobs do what they say: grouped commands, defaults shown, one name per concept,
errors that end with the next step, and request.py's exit codes the same as the CLI's."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from santander import cli, config
from santander.ops.launcher import free_port
from tests.helpers import ROOT, client

DEPLOY_SETTINGS = ROOT / "deploy" / "settings.json"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_lists_every_command_once_under_its_task_with_a_one_line_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ")]
    assert sorted(listed) == sorted(_subcommands())
    for group, _ in cli.COMMAND_GROUPS:
        assert f"\n  {group}:" in out
    assert "{" not in out.split("positional arguments")[0]     # no brace list of 15 names
    assert "exit codes: 0" in out


def test_every_option_with_a_default_shows_it():
    for name, sub in _subcommands().items():
        text = sub.format_help()
        for action in sub._actions:
            if action.help in (None, argparse.SUPPRESS) or action.default in (None, False):
                continue
            if action.option_strings and action.default is not argparse.SUPPRESS:
                shown = "".join(text.split())      # wrapping may break a default at a hyphen
                assert f"(default:{action.default})" in shown, (name, action.dest)


def test_one_name_per_concept_across_commands():
    for name, sub in _subcommands().items():
        visible = {s for a in sub._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
        assert not visible & {"--base", "--http-port"}, name
        if "--port" in visible or "--host" in visible:
            assert {"--host", "--port"} <= visible, name
    # A version a command acts on is positional; one a command reads from is --version.
    commands = _subcommands()
    for name in ("promote", "retire"):
        assert commands[name].parse_args(["3"]).version == "3"
    for name in ("live", "monitor"):
        assert commands[name].parse_args(["--version", "3"]).version == "3"
    retrain = commands["retrain"]
    assert retrain.parse_args(["--data", "x.csv", "--version", "3"]).base == "3"
    assert retrain.parse_args(["--data", "x.csv", "--base", "3"]).base == "3"   # its old name


def test_serve_host_and_port_reach_mlserver(monkeypatch, tmp_path):
    """MLServer's own settings parsing, as `mlserver start` does it, sees what serve was given:
    deploy/settings.json names no host or port, so the variables serve sets apply."""
    from mlserver.settings import Settings
    from santander.export import export_version
    from santander.training.candidates import get_family
    import numpy as np
    X = np.random.default_rng(0).normal(size=(60, 200)).astype(np.float32)
    model = get_family("naive_bayes").build(var_smoothing=1e-9).fit(X, (X[:, 0] > 0).astype(int))
    export_version(model, "joblib", 0.5, {"family": "naive_bayes"}, tmp_path)
    executed = {}
    monkeypatch.setattr(cli.os, "execvpe", lambda file, argv, env: executed.update(env=env))
    assert cli.main(["serve", "--repository", str(tmp_path), "--host", "0.0.0.0",
                     "--port", "9123", "--grpc-port", "9124"]) == 0
    for key in ("MLSERVER_HOST", "MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT"):
        monkeypatch.setenv(key, executed["env"][key])
    settings = Settings.parse_file(DEPLOY_SETTINGS)
    assert (settings.host, settings.http_port, settings.grpc_port) == ("0.0.0.0", 9123, 9124)


def test_serve_defaults_to_loopback_and_the_environment_sets_the_default(monkeypatch):
    monkeypatch.delenv("MLSERVER_HOST", raising=False)
    monkeypatch.delenv("MLSERVER_HTTP_PORT", raising=False)
    args = cli.build_parser().parse_args(["serve"])
    assert (args.host, args.port) == (config.SERVER_HOST, config.HTTP_PORT)
    monkeypatch.setenv("MLSERVER_HTTP_PORT", "9999")
    assert cli.build_parser().parse_args(["serve"]).port == 9999


def test_make_data_names_the_file_by_its_rows_and_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["make-data", "--rows", "300", "--seed", "3"]) == 0
    written = tmp_path / config.built_in_data_path(300, 3)
    assert written.is_file() and written.name == "train-300rows-seed3.parquet"
    assert str(config.built_in_data_path(300, 3)) in capsys.readouterr().out


def test_train_without_data_says_how_to_make_or_bring_it(tmp_path, capsys):
    code = cli.main(["train", "--data", str(tmp_path / "none.parquet"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "none.parquet: no such file" in err
    assert "santander make-data" in err and "--data" in err


def test_serve_with_no_version_says_how_to_train_one(tmp_path, capsys):
    assert cli.main(["serve", "--repository", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make run" in err and "santander train" in err


def test_request_py_with_no_server_exits_2_saying_how_to_start_one(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert client.main(["--url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "python -m santander serve" in err


def test_request_py_over_grpc_with_no_server_exits_2_saying_how_to_start_one():
    # Its own process: tritonclient's gRPC protos clash with MLServer's in this one.
    done = subprocess.run([sys.executable, "request.py", "--grpc", f"127.0.0.1:{free_port()}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "python -m santander serve" in done.stderr and "--grpc" in done.stderr


def test_request_py_and_the_cli_refuse_bad_arguments_alike():
    for command in (["request.py", "--rows", "many"], ["-m", "santander", "train", "--rows"]):
        done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, command
