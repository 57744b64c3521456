"""The dyadflow command line (issue 14, point 16): --version, and help for every command and option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

import pytest

from dyadflow.tools import cli


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"dyadflow {metadata.version('dyadflow')}\n"


def test_every_command_and_option_has_help():
    parser = cli.build_parser()
    commands = _subcommands(parser)
    assert sorted(commands) == ["check-instruments", "demo-data", "demo-dial", "inspect", "nightly", "outputs"]
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert all(choice.help for choice in sub._choices_actions), [c.dest for c in sub._choices_actions if not c.help]
    for name, p in commands.items():
        assert p.description, name
        missing = [a.dest for a in p._actions if not a.help]
        assert missing == [], (name, missing)


@pytest.mark.parametrize("command", ["check-instruments", "demo-data", "demo-dial", "inspect", "nightly", "outputs"])
def test_every_command_help_exits_0(command):
    proc = subprocess.run(
        [sys.executable, "-m", "dyadflow", command, "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: dyadflow {command} ")
