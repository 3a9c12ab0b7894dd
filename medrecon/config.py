"""YAML configs that map one-to-one onto frozen dataclasses (no eval, no imports by string)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputFileError

T = TypeVar("T")


def load_config(path: str | Path, cls: type[T], section: str | None = None) -> T:
    """Read ``path`` (YAML, safe loader) into dataclass ``cls``.

    Args:
        path: the YAML file.
        cls: a dataclass; its fields are the only allowed keys; fields without defaults are required.
        section: read only this top-level mapping of the file.

    Raises:
        InputFileError: unreadable YAML, not a mapping, unknown or missing keys. Values are then
            checked by the dataclass's own validation (``ValueError``).
    """
    import yaml

    p = Path(path)
    try:
        data: Any = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputFileError(p, "file", "a readable YAML file", f"unreadable ({err.__class__.__name__})") from None
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise InputFileError(p, section, f"a top-level '{section}' mapping", f"keys {sorted(data) if isinstance(data, dict) else type(data).__name__}")
        data = data[section]
    if not isinstance(data, dict):
        raise InputFileError(p, section or "document", "a mapping of settings", type(data).__name__)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputFileError(p, section or "document", f"keys among {sorted(fields)}", f"unknown keys {unknown}")
    missing = sorted(
        n for n, f in fields.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise InputFileError(p, section or "document", f"required keys {missing}", "nothing")
    return cls(**data)
