"""Command-line options every task command shares: ``--config``, ``--set``, ``--device``, ``--quiet``.

Settings come from the settings class's defaults, a recommendation (e.g. a prior's), the YAML
section of ``--config``, ``--set key=value`` and the command's own flags, later ones winning
(:func:`medrecon.config.build_settings`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, TypeVar

from ..config import Settings, build_settings, parse_set_options, yaml_section

S = TypeVar("S", bound=Settings)


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
    cls: type[S], args: argparse.Namespace, section: str, flags: Mapping[str, Any], recommended: Mapping[str, Any] | None = None
) -> S:
    """Build ``cls`` from ``recommended``, ``--config``'s ``section``, ``--set`` and ``flags`` (``None`` = not given)."""
    file_values = yaml_section(args.config, section) if getattr(args, "config", None) else None
    return build_settings(
        cls,
        recommended=recommended,
        file_values=file_values,
        file=getattr(args, "config", None),
        section=section,
        set_values=parse_set_options(getattr(args, "set", None)),
        flags=flags,
    )
