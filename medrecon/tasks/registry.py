"""The task registry: tasks add their command-line subcommands here; the CLI reads it.

A task package ``medrecon/tasks/<task>/`` has a ``commands`` module that calls :func:`register`
for each verb it offers (``medrecon <verb> <task> ...``, e.g. ``reconstruct mri``). The CLI builds
one subcommand per verb found and one sub-subcommand per task, so a new task needs no CLI edit:
add its package and its ``commands`` module to :data:`BUILTIN_TASKS`, or, from another
distribution, declare an entry point in the group ``medrecon.tasks`` that names such a module.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

BUILTIN_TASKS = (
    "medrecon.tasks.mri.commands",
    "medrecon.tasks.ct.commands",
    "medrecon.tasks.pet.commands",
    "medrecon.tasks.oct.commands",
    "medrecon.tasks.mr2ct.commands",
)
ENTRY_POINT_GROUP = "medrecon.tasks"
VERB_HELP = {
    "simulate": "simulate an acquisition from fully sampled data or images",
    "reconstruct": "reconstruct raw measurements (k-space, sinograms)",
    "denoise": "denoise images",
    "translate": "translate images of one modality into another",
}


@dataclass(frozen=True)
class TaskCommand:
    """One ``medrecon <verb> <task>`` subcommand.

    Attributes:
        verb: ``simulate``, ``reconstruct``, ``denoise``, ``translate`` or a new verb.
        task: the task's name (``mri``, ``ct``).
        help: one line for ``--help``.
        add_arguments: adds the subcommand's options to its parser.
        run: runs it with the parsed arguments; returns the exit status.
    """

    verb: str
    task: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_COMMANDS: dict[tuple[str, str], TaskCommand] = {}
_LOADED = False


def register(command: TaskCommand) -> TaskCommand:
    """Add a subcommand; registering the same verb and task twice is an error."""
    key = (command.verb, command.task)
    if key in _COMMANDS and _COMMANDS[key] is not command:
        raise ValueError(f"task command: '{command.verb} {command.task}' is registered already")
    _COMMANDS[key] = command
    return command


def unregister(verb: str, task: str) -> None:
    """Remove a subcommand (tests, plug-ins that replace a built-in)."""
    _COMMANDS.pop((verb, task), None)


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in BUILTIN_TASKS:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def task_commands() -> list[TaskCommand]:
    """Every registered subcommand (built-in tasks and entry points loaded on first call), by verb then task."""
    _load()
    return sorted(_COMMANDS.values(), key=lambda c: (c.verb, c.task))


_SIMULATORS: dict[str, Callable[..., Callable]] = {}


def register_pair_simulator(name: str, factory: Callable[..., Callable]) -> None:
    """Make a condition simulator available to ``data.condition.simulate: NAME`` in training configs.

    Args:
        name: the name configs use (``ct_limited_angle_fbp``).
        factory: ``factory(**options) -> simulate``, where ``simulate(images (n, *spatial),
            generator) -> conditions (n, Cc, *spatial)`` (:mod:`medrecon.diffusion.pairs`);
            invalid options raise :class:`~medrecon.errors.ArgumentError`.
    """
    if name in _SIMULATORS and _SIMULATORS[name] is not factory:
        raise ValueError(f"pair simulator: {name!r} is registered already")
    _SIMULATORS[name] = factory


def pair_simulator(name: str, options: dict) -> Callable:
    """The simulator ``name`` built with ``options``.

    Raises:
        ArgumentError: no simulator of that name is registered.
    """
    from ..errors import ArgumentError

    _load()
    if name not in _SIMULATORS:
        raise ArgumentError(f"data.condition.simulate: expected one of {sorted(_SIMULATORS)}, got {name!r}")
    return _SIMULATORS[name](**options)
