"""history.csv: one row per completed epoch, appended and fsynced before the epoch's
checkpoint, so that a killed run's history never runs ahead of what it can resume from."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from cnnkeras import _io
from cnnkeras.errors import UserError


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except (ValueError, TypeError) as err:  # a cell that is not a number, a row cut short
        raise UserError(f"{path} is not a history cnnkeras wrote ({err}); restore it") from None


def write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.unlink(missing_ok=True)
        return
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(_cell(r[k]) for k in keys) for r in rows]
    _io.write_text(path, "\n".join(lines) + "\n")


def _cell(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def append_history(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        if new:
            f.write(",".join(row) + "\n")
        f.write(",".join(_cell(v) for v in row.values()) + "\n")
        f.flush()
        os.fsync(f.fileno())
