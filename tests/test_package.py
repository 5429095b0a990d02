"""What a user installing wan-tui meets first: the version, the help, completion, the one
error root and the log file they would attach to a bug report."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import T2V, VENICE_KEY, sim_env

import tui
from tui import cli
from tui.cli import build_parser, main
from tui.completion import script
from tui.errors import EXIT_FAIL, EXIT_USAGE, WanError


def run_module(*args: str) -> subprocess.CompletedProcess:
    # Textual blocked: `--help`, `--version` and completion stay headless.
    code = ("import sys, runpy; sys.modules['textual'] = None\n"
            "sys.argv = ['wan-tui', *sys.argv[1:]]\n"
            "runpy.run_module('tui', run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60)


def test_version_is_one_source_for_the_package_and_the_command():
    assert importlib.metadata.version("wan-tui") == tui.__version__
    result = run_module("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wan-tui {tui.__version__}"


def test_help_explains_every_option_and_names_the_environment():
    result = run_module("--help")
    assert result.returncode == 0, result.stderr
    for var in ("WAN_TUI_HOME", "VENICE_API_KEY", "APIXO_API_KEY", "ACEDATA_API_TOKEN",
                "VENICE_BASE_URL", "WAN_TUI_TIME_SCALE", "config.toml"):
        assert var in result.stdout
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parsers = {"wan-tui": parser, **subparsers.choices}
    undocumented = [f"{name} {a.dest}" for name, p in parsers.items() for a in p._actions
                    if not a.help and name != "sim"]
    assert undocumented == []
    assert all(a.help for a in subparsers._choices_actions)


def complete(words: str, cursor_word: str = "") -> list[str]:
    """What bash offers after `words` with the completion script loaded."""
    line = f"{words} {cursor_word}".strip() if cursor_word else f"{words} "
    items = line.split(" ") if cursor_word else [*words.split(" "), ""]
    array = " ".join(f"'{w}'" for w in items)
    shell = (script(build_parser(), "bash")
             + f"\nCOMP_WORDS=({array}); COMP_CWORD={len(items) - 1}; _wan_tui\n"
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.splitlines() if w]


def test_bash_completion_offers_commands_options_and_choices():
    assert complete("wan-tui", "mo") == ["models"]
    assert {"submit", "list", "completion", "--version", "--debug"} <= set(complete("wan-tui"))
    assert complete("wan-tui models --provider", "a") == ["apixo", "acedata"]
    assert "--negative-prompt" in complete("wan-tui --debug submit", "--n")
    assert {"bash", "zsh", "fish"} <= set(complete("wan-tui completion"))
    assert complete("wan-tui completion", "f") == ["fish"]
    assert complete("wan-tui submit --prompt") == []  # free text: the shell's own default


def test_zsh_and_fish_scripts_cover_every_command():
    zsh = script(build_parser(), "zsh")
    assert "bashcompinit" in zsh and "complete -o default -F _wan_tui wan-tui" in zsh
    fish = script(build_parser(), "fish")
    for command in ("models", "submit", "batch", "completion"):
        assert f"-a {command} -d" in fish
    assert "-l provider -xa 'venice apixo acedata'" in fish
    result = run_module("completion", "fish")
    assert result.returncode == 0 and result.stdout == fish


def test_every_error_kind_has_one_root_and_its_exit_status():
    from tui.batchfile import BatchError
    from tui.config import ConfigError
    from tui.engine import EngineError
    from tui.engine.lock import EngineBusy
    from tui.jobs import ValidationError
    from tui.providers.base import AuthError, NetworkError
    from tui.store import StoreError

    usage = [ConfigError, ValidationError, BatchError, EngineBusy, EngineError, AuthError,
             cli.UsageError]
    failure = [StoreError, NetworkError, cli.Failure]
    assert all(issubclass(k, WanError) for k in usage + failure)
    assert [k.exit_status for k in usage] == [EXIT_USAGE] * len(usage)
    assert [k.exit_status for k in failure] == [EXIT_FAIL] * len(failure)


def test_a_bug_is_one_line_for_the_user_and_a_traceback_in_the_log(monkeypatch, capsys,
                                                                  tmp_path):
    async def broken(args):
        raise RuntimeError("the list is upside down")

    # A bug cannot be produced on purpose in working code: stand one in for a command.
    monkeypatch.setitem(cli.ASYNC_COMMANDS, "list", broken)
    assert main(["list"]) == EXIT_FAIL
    err = capsys.readouterr().err
    log_file = tmp_path / "home" / "logs" / "wan-tui.log"
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "the list is upside down" in err and str(log_file) in err
    logged = log_file.read_text()
    assert "Traceback" in logged and "RuntimeError: the list is upside down" in logged


def test_config_prints_the_log_file(capsys, tmp_path):
    assert main(["config"]) == 0
    assert f"log file     {tmp_path / 'home' / 'logs' / 'wan-tui.log'}" in capsys.readouterr().out


def test_the_log_never_holds_a_key_even_when_debugging(sim, monkeypatch, tmp_path, capsys):
    for key, value in sim_env(sim, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    assert main(["--debug", "quote", "--model", T2V, "--duration", "5s"]) == 0
    logging.getLogger("wan_tui.test").info("headers Authorization: Bearer abc123 api_key=xyz789"
                                           f" and the raw key {VENICE_KEY}")
    log = (tmp_path / "home" / "logs" / "wan-tui.log").read_text()
    assert "httpx" in log or "httpcore" in log  # --debug: the libraries' lines too
    assert "Bearer [redacted]" in log and "api_key=[redacted]" in log
    for secret in (VENICE_KEY, "sim-apixo-key", "sim-acedata-token", "abc123", "xyz789"):
        assert secret not in log
    assert "Bearer" not in capsys.readouterr().err  # nothing logged to the terminal


def test_without_debug_only_our_own_lines_are_kept(sim, monkeypatch, tmp_path):
    for key, value in sim_env(sim, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    assert main(["quote", "--model", T2V, "--duration", "5s"]) == 0
    logging.getLogger("httpx").info("a library's chatter")
    logging.getLogger("wan_tui.test").info("our own note")
    log = (tmp_path / "home" / "logs" / "wan-tui.log").read_text()
    assert "our own note" in log and "chatter" not in log


def test_version_and_completion_leave_no_log_behind(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert main(["completion", "bash"]) == 0
    assert "_wan_tui" in capsys.readouterr().out
    assert not (tmp_path / "home" / "logs").exists()


def test_license_and_changelog_ship_with_the_source():
    root = Path(__file__).parent.parent
    assert "MIT License" in (root / "LICENSE").read_text()
    assert f"## {tui.__version__}" in (root / "CHANGELOG.md").read_text()
