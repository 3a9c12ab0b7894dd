"""Command-line options every task command shares: ``--config``, ``--set``, ``--device``, ``--quiet``,
and the action of every floating-point option (:class:`FiniteFloat`: no NaN, no Inf).

Settings come from the settings class's defaults, a recommendation (e.g. a prior's), the YAML
section of ``--config``, ``--set key=value`` and the command's own flags, later ones winning
(:func:`medrecon.config.build_settings`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from ..config import Settings, build_settings, parse_set_options, yaml_section
from ..errors import ArgumentError

S = TypeVar("S", bound=Settings)


class FiniteFloat(argparse.Action):
    """The action of every float option (``type=float, action=FiniteFloat``): NaN and Inf are refused.

    ``float()`` accepts ``nan``, ``inf`` and overflowing values such as ``1e999``; none of them is a
    usable dose, angle, weight or fraction. The error is medrecon's :class:`~medrecon.errors.ArgumentError`
    naming the option (one line, exit 2), raised while the arguments are parsed, so even an option
    the chosen method ignores cannot carry one.
    """

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None
    ) -> None:
        """Store ``values`` (one float, or a list for ``nargs``) after checking that each is finite."""
        for value in values if isinstance(values, list) else [values]:
            if not math.isfinite(value):
                raise ArgumentError(f"{option_string or self.dest}: expected a finite number, got {value}")
        setattr(namespace, self.dest, values)


def add_common_options(parser: argparse.ArgumentParser, section: str | None, device: bool = True) -> None:
    """Add ``--config`` / ``--set`` (when the command reads a settings ``section``), ``--device`` and ``--quiet``."""
    if section is not None:
        parser.add_argument(
            "--config", default=None, metavar="FILE.yaml", help=f"YAML file whose '{section}' section sets this command's settings"
        )
        parser.add_argument(
            "--set", action="append", default=None, metavar="KEY=VALUE", help=f"override one '{section}' setting (repeatable)"
        )
    if device:
        parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def settings_from(
    cls: type[S],
    args: argparse.Namespace,
    section: str,
    flags: Mapping[str, Any],
    recommended: Mapping[str, Any] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> S:
    """Build ``cls`` from ``recommended``, ``--config``'s ``section``, ``--set`` and ``flags`` (``None`` = not given).

    ``flag_names`` maps a field to its option where the two differ (``{"arc_deg": "--arc"}``), so an
    error names the option the user typed.
    """
    file_values = yaml_section(args.config, section) if getattr(args, "config", None) else None
    return build_settings(
        cls,
        recommended=recommended,
        file_values=file_values,
        file=getattr(args, "config", None),
        section=section,
        set_values=parse_set_options(getattr(args, "set", None)),
        flags=flags,
        flag_names=flag_names,
    )
