"""Where the shared benchmark data lives: `$LIFT_JAX_DATA`, else `<repo>/../shared/data`."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "LIFT_JAX_DATA"


def data_root() -> Path:
    """The benchmark data folder: `$LIFT_JAX_DATA` when set, else `../shared/data` next to the repository."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data"


def niah_essays_dir() -> Path:
    """The Paul Graham essays that make the NIAH haystack."""
    return data_root() / "niah" / "PaulGrahamEssays"


def squad_file() -> Path:
    """The bundled SQuAD v1.1 dev half (official JSON format)."""
    return data_root() / "squad" / "dev-v1.1-half-a.json"


def loogle_dir() -> Path:
    """The folder with the LooGLE samples `longdep_qa.jsonl` and `shortdep_qa.jsonl`."""
    return data_root() / "loogle"
