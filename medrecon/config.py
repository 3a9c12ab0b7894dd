"""Typed settings: pydantic v2 models read from YAML sections, ``--set key=value`` and flags.

Every settings class derives from :class:`Settings` (frozen, unknown keys rejected, NaN and
infinite numbers rejected, numbers given as strings such as YAML 1.1's ``2e-4`` parsed as numbers). Each parameter has its one default in
its class. Values come, later ones winning, from: the class defaults, a task's or prior's
recommendation, the YAML file (``--config``), ``--set key=value`` and explicit command-line flags
(:func:`build_settings`). Errors name the file or option, the key, what was expected and what was
received, as :class:`~medrecon.errors.InputFileError` / :class:`~medrecon.errors.ArgumentError`.
The YAML is read with the safe loader: no tags, no code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ArgumentError, InputFileError


class Settings(BaseModel):
    """Base of every settings model: immutable, unknown keys are errors, every number finite (no NaN, no Inf)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


S = TypeVar("S", bound=Settings)


def validation_message(err: ValidationError, cls: type[BaseModel]) -> tuple[str, str, str]:
    """The first problem of a pydantic ``ValidationError`` of ``cls`` as (key, expected, received)."""
    first = err.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    key = ".".join(loc) or "document"
    if first.get("type") == "extra_forbidden":
        model: Any = cls
        for part in loc[:-1]:  # the nested model the unknown key sits in
            ann = model.model_fields[part].annotation if part in getattr(model, "model_fields", {}) else None
            model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        allowed = sorted(model.model_fields) if model is not None else []
        return key, f"a key among {allowed}", "an unknown key"
    msg = first.get("msg", "a valid value")
    for prefix, short in _SHORT.items():
        if msg.startswith(prefix):
            msg = short + msg[len(prefix) :]
    if first.get("type") == "value_error":
        return _settings_conflict(msg, loc)
    return key, msg, repr(first.get("input"))


def _settings_conflict(msg: str, loc: list[str]) -> tuple[str, str, str]:
    """A model-level check's message, ``"<field>: expected X, got Y"`` (or ``"expected X, got Y"`` for
    the model as a whole), as (key, expected, received): the key is the field the message starts
    with, inside the model at ``loc``, rather than the model itself."""
    head, sep, rest = msg.partition(": expected ")
    if sep and re.fullmatch(r"[A-Za-z_][\w.]*", head):
        key, body = ".".join([*loc, head]), rest
    else:
        key, body = ".".join(loc) or "document", msg.removeprefix("expected ")
    expected, sep, received = body.rpartition(", got ")
    return (key, expected, received) if sep else (key, body, "these settings together")


# pydantic's phrasing -> the one-line "expected ..., got ..." style of medrecon's errors
_SHORT = {
    "Value error, ": "",
    "Input should be greater than or equal to ": ">= ",
    "Input should be greater than ": "> ",
    "Input should be less than or equal to ": "<= ",
    "Input should be less than ": "< ",
    "Input should be ": "",
    "List should have at least ": "a list with at least ",
}


def read_yaml(path: str | Path) -> dict:
    """A YAML file's top-level mapping (safe loader).

    Raises:
        InputFileError: unreadable, not YAML, or not a mapping.
    """
    import yaml

    p = Path(path)
    if not p.is_file():  # never opened otherwise: a named pipe would block the read
        got = "missing" if not p.exists() else "a folder" if p.is_dir() else "a special file (named pipe, socket or device)"
        raise InputFileError(p, "file", "an existing YAML file", got)
    try:
        data: Any = yaml.safe_load(p.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputFileError(p, "file", "a readable YAML file", f"unreadable ({err.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputFileError(p, "document", "a mapping of sections", type(data).__name__)
    return data


def yaml_section(path: str | Path, section: str, required: bool = True) -> dict:
    """One top-level mapping of a YAML file (``{}`` when absent and not ``required``)."""
    data = read_yaml(path)
    if section not in data:
        if required:
            raise InputFileError(path, section, f"a top-level '{section}' mapping", f"keys {sorted(data)}")
        return {}
    value = data[section]
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputFileError(path, section, "a mapping of settings", type(value).__name__)
    return value


def parse_set_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``["steps=20", "init=cs"]`` → ``{"steps": 20, "init": "cs"}`` (values parsed as YAML scalars).

    Raises:
        ArgumentError: an item without ``=`` or with an empty key.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ArgumentError(f"--set: expected key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def load_config(path: str | Path, cls: type[S], section: str | None = None) -> S:
    """Read ``path`` (YAML; one section of it when ``section`` is given) into the settings model ``cls``."""
    data = read_yaml(path) if section is None else yaml_section(path, section)
    return build_settings(cls, file_values=data, file=path, section=section)


def build_settings(
    cls: type[S],
    *,
    recommended: Mapping[str, Any] | None = None,
    file_values: Mapping[str, Any] | None = None,
    file: str | Path | None = None,
    section: str | None = None,
    set_values: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> S:
    """Merge the sources of settings (later wins) and validate them into ``cls``.

    Args:
        cls: the settings model.
        recommended: values a prior or task recommends (ignored for keys ``cls`` lacks).
        file_values: the YAML section's mapping, from ``file``.
        file, section: where ``file_values`` came from (named in errors).
        set_values: ``--set`` values.
        flags: command-line flags by field name; ``None`` values mean "not given".
        flag_names: the option of a flag whose name is not ``--field-name`` (``{"arc_deg": "--arc"}``),
            for the error message.

    Raises:
        InputFileError: a bad key or value that came from the file.
        ArgumentError: a bad key or value from ``--set`` or a flag.
    """
    fields = set(cls.model_fields)
    merged: dict[str, Any] = {k: v for k, v in (recommended or {}).items() if k in fields}
    origin: dict[str, str] = dict.fromkeys(merged, "recommended")
    for name, values in (("file", file_values), ("set", set_values), ("flag", flags)):
        for k, v in (values or {}).items():
            if name == "flag" and v is None:
                continue
            merged[k] = v
            origin[k] = name
    try:
        return cls(**merged)
    except ValidationError as err:
        key, expected, received = validation_message(err, cls)
        top = key.split(".")[0]
        where = origin.get(top, "file" if file is not None else "set")
        if where == "file" and file is not None:
            field = f"{section}.{key}" if section else key
            raise InputFileError(file, field, expected, received) from None
        option = (flag_names or {}).get(top, f"--{key.replace('_', '-')}")
        label = f"--set {key}" if where == "set" else option if where == "flag" else f"{key} (recommended by the prior)"
        raise ArgumentError(f"{label}: expected {expected}, got {received}") from None
