"""The one error type for bad input files, with a message that names file, field, expected and got."""

from __future__ import annotations

from pathlib import Path


class InputFileError(ValueError):
    """A file that cannot be used as given.

    The message reads ``"<file>: <field>: expected <expected>, got <received>"`` so a user sees in one
    line what is wrong and where.
    """

    def __init__(self, path: str | Path, field: str, expected: str, received: str) -> None:
        self.path = str(path)
        self.field = field
        self.expected = expected
        self.received = received
        super().__init__(f"{self.path}: {field}: expected {expected}, got {received}")
