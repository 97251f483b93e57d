"""The run directory: its layout, JSONL metrics, and atomic small-file writes."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON via a temporary file + fsync + rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
    """Append-only JSONL of training metrics, flushed per line."""

    def __init__(self, path: Path):
        self._file = open(path, "a")  # noqa: SIM115 - kept open for the run

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
