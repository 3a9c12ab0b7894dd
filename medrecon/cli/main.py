"""The ``medrecon`` command line: the parser assembled from the command modules and the task registry.

``medrecon <verb> <task>`` subcommands (``simulate mri``, ``reconstruct ct``, …) come from
:mod:`medrecon.tasks.registry`; ``evaluate``, ``train`` and ``demo`` are this package's modules.
Errors of medrecon's family (:mod:`medrecon.errors`: bad files, arguments, configs, a missing
dependency) end as one line on stderr and exit status 2 — also when raised while the arguments
are parsed (:class:`~medrecon.tasks.options.FiniteFloat`); anything else is a bug and keeps its
traceback (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import MedreconError, missing_dependency
from ..tasks.registry import VERB_HELP, task_commands
from . import benchmark, demo, evaluate, train


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(prog="medrecon", description="Medical image reconstruction with physics and diffusion priors.")
    sub = p.add_subparsers(dest="command", required=True)
    verbs: dict[str, argparse._SubParsersAction] = {}
    for cmd in task_commands():
        if cmd.verb not in verbs:
            vp = sub.add_parser(cmd.verb, help=VERB_HELP.get(cmd.verb, f"{cmd.verb} (task commands)"))
            verbs[cmd.verb] = vp.add_subparsers(dest="task", required=True, metavar="TASK")
        tp = verbs[cmd.verb].add_parser(cmd.task, help=cmd.help, description=cmd.help)
        cmd.add_arguments(tp)
        tp.set_defaults(func=cmd.run)
    for module in (evaluate, train, benchmark, demo):
        module.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medrecon`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except MedreconError as err:
        print(f"medrecon: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        missing = missing_dependency(err)
        if missing is None:
            raise
        print(f"medrecon: error: {missing}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
