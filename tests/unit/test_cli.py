"""The command line as a user meets it: help everywhere, one-line errors, exit codes."""

import subprocess
import sys

from a2v.cli import RECIPES, app, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from a2v.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("info", "prepare", "demo", "serve"):
        assert cmd in r.stdout


def _commands(group, path=()):
    import typer.main

    cmd = typer.main.get_command(group)
    stack = [(cmd, path)]
    while stack:
        c, p = stack.pop()
        subs = getattr(c, "commands", None)
        if subs:
            stack.extend((v, (*p, k)) for k, v in subs.items())
        else:
            yield p, c


def test_every_command_has_help_with_example():
    found = list(_commands(app))
    assert len(found) >= 4
    for path, cmd in found:
        assert cmd.help and "Example:" in cmd.help, f"a2v {' '.join(path)} lacks an example in --help"


def test_unknown_recipe_is_one_line_error():
    r = run_cli("prepare", "nosuch", "-i", "x", "-o", "y")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: unknown recipe 'nosuch' (choose one of: " + ", ".join(RECIPES) + ")"
    assert "Traceback" not in r.stderr


def test_unknown_command_exits_2_without_traceback():
    r = run_cli("bogus")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_main_returns_error_code(capsys):
    assert main(["--help"]) == 0
    assert main(["prepare", "nosuch", "-i", "x", "-o", "y"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown recipe")


def test_console_messages_stay_one_line_when_not_a_terminal():
    import io

    from a2v.cliutil import console

    buf = io.StringIO()
    old_file = console.file
    console.file = buf  # a pipe or log file: Rich would wrap at 80 columns
    try:
        msg = "WARNING: " + " ".join(f"word{i}" for i in range(60))  # ~420 characters
        console.print(msg)
    finally:
        console.file = old_file
    assert buf.getvalue().rstrip("\n") == msg
