"""A new task plugs into the CLI through the registry alone; only medrecon's errors exit 2."""

import argparse

import pytest

from medrecon.cli.main import build_parser, main
from medrecon.errors import ArgumentError
from medrecon.tasks import registry


@pytest.fixture
def toy_task():
    """A task registered at run time: 'denoise toy', a verb no built-in task has."""
    seen = {}

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--level", type=float, required=True)

    def run(args: argparse.Namespace) -> int:
        if args.level < 0:
            raise ArgumentError(f"--level: expected >= 0, got {args.level}")
        if args.level > 100:
            raise TypeError("a bug in the toy task")
        if args.level == 42:
            import astra  # noqa: F401 - importable here; the test below fakes its absence

            raise ImportError("No module named 'sigpy'", name="sigpy")
        seen["level"] = args.level
        return 0

    cmd = registry.register(registry.TaskCommand("denoise", "toy", "denoise toy images", add, run))
    yield seen
    registry.unregister(cmd.verb, cmd.task)


def test_builtin_tasks_are_registered():
    names = {(c.verb, c.task) for c in registry.task_commands()}
    assert {("simulate", "mri"), ("reconstruct", "mri"), ("simulate", "ct"), ("reconstruct", "ct")} <= names


def test_a_new_task_needs_no_cli_edit(toy_task, capsys):
    assert "denoise" in build_parser().format_help()
    assert main(["denoise", "toy", "--level", "3"]) == 0 and toy_task["level"] == 3
    assert main(["denoise", "toy", "--level", "-1"]) == 2  # the project's error: one line, exit 2
    err = capsys.readouterr().err
    assert err.strip() == "medrecon: error: --level: expected >= 0, got -1.0"
    with pytest.raises(TypeError, match="bug"):  # a bug keeps its traceback
        main(["denoise", "toy", "--level", "101"])
    assert main(["denoise", "toy", "--level", "42"]) == 2  # a missing dependency names the pip command
    assert capsys.readouterr().err.strip().endswith("pip install sigpy")


def test_registering_twice_is_an_error(toy_task):
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.TaskCommand("denoise", "toy", "other", lambda p: None, lambda a: 0))


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main(["simulate", "ct", "--input", str(tmp_path), "--device", "tpu", "--out", str(tmp_path / "s.h5")]) == 2
    assert "--device: expected 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in capsys.readouterr().err
    assert main(["simulate", "ct", "--input", str(tmp_path), "--slices", "3-1", "--out", str(tmp_path / "s.h5")]) == 2
    assert "--slices: expected" in capsys.readouterr().err
    assert main(["simulate", "ct", "--input", str(tmp_path), "--dose", "nan", "--out", str(tmp_path / "s.h5")]) == 2
    assert "--dose: expected a finite number, got nan" in capsys.readouterr().err
