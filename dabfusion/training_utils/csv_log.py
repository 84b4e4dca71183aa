"""Append-only CSV of training metrics that stays consistent across resumes."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Mapping


class CSVLogger:
    """Rows of ``{"step": int, name: value, ...}``; new columns widen the file.

    ``resume_step``: rows with ``step > resume_step`` (written after the checkpoint we resume
    from) are dropped on open, so the curve has no duplicate steps after a resume.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fields: list[str] = ["step"]
        self.rows: list[dict[str, Any]] = []
        if self.path.exists() and resume_step is not None:
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or ["step"])
                self.rows = [r for r in reader if r.get("step") and int(float(r["step"])) <= resume_step]
            self._rewrite()
        elif self.path.exists():
            self.path.unlink()

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def log(self, step: int, values: Mapping[str, Any]) -> None:
        row = {"step": int(step)}
        row.update({k: (float(v) if hasattr(v, "__float__") else v) for k, v in values.items()})
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new or not self.path.exists():
            self.fields += new
            self._rewrite()
            return
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(row)
