"""The run directory: its layout and JSONL metrics (small files are written with lift_jax.durable)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lift_jax.durable import append_jsonl, open_append
from lift_jax.durable import write_json_atomic as write_json_atomic  # re-exported for the run's writers


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths inside one absorb run's output directory."""

    root: Path

    @property
    def qa_cache(self) -> Path:
        return self.root / "qa_cache"

    @property
    def teacher_cache(self) -> Path:
        return self.root / "teacher_cache"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def timing(self) -> Path:
        return self.root / "timing.json"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def document_copy(self) -> Path:
        return self.root / "document.txt"

    def process_log(self, index: int) -> Path:
        """The log of process `index` > 0 of a multi-process run (process 0 reports on the console)."""
        return self.root / f"process_{index}.log"

    def create(self) -> RunDir:
        """Make the directory (and parents)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self


class MetricsLog:
    """Append-only JSONL of training metrics, one fsynced line per record (a line a kill tore is cut off when
    a resumed run reopens the file)."""

    def __init__(self, path: Path):
        self._file = open_append(path, lock=False)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        append_jsonl(self._file, [record], ensure_ascii=True)

    def close(self) -> None:
        """Close the file."""
        self._file.close()
