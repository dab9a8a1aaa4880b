"""Errors the CLI turns into exit codes: InputError → 2 (bad input / configuration), anything else → 1."""

from __future__ import annotations


class InputError(Exception):
    """Bad input or configuration the user can fix; the message names file, row, column and the fix."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None, fix: str | None = None):
        self.file, self.row, self.column, self.fix = file, row, column, fix
        parts = [message]
        where = ", ".join(p for p in (
            f"file {file}" if file else "",
            f"row {row}" if row is not None else "",
            f"column {column}" if column else "",
        ) if p)
        if where:
            parts.append(f"({where})")
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))
