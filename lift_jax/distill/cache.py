"""Crash-safe JSONL cache of teacher outputs, one file per writing process.

One line per answered question, `{"key", "answer_ids", "top_ids", "top_logprobs", "status": "ok"}`; the
questions of one window are appended (and fsynced) in one write. A torn last line is ignored when reading and
cut off before the next append. Keys (`teacher_key`) cover everything that determines an output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import ml_collections
import numpy as np

from lift_jax.durable import FileBusyError, append_jsonl, open_append, read_jsonl
from lift_jax.synth.cache import CacheError, shard_suffix

_FILE = re.compile(r"^teacher_cache(?:\.p\d+-of-\d+)?\.jsonl$")


@dataclasses.dataclass(frozen=True, eq=False)
class TeacherAnswer:
    """The teacher's greedy answer (ending with its stop token when it stopped) and, per answer position, the
    top-K token ids and log-probabilities (float32) of the distribution that predicted that token."""

    answer_ids: tuple[int, ...]
    top_ids: np.ndarray  # [len(answer_ids), K] int32
    top_logprobs: np.ndarray  # [len(answer_ids), K] float32

    def record(self, key: str) -> dict[str, Any]:
        """The cache line of this answer."""
        return {"key": key, "answer_ids": list(self.answer_ids), "top_ids": self.top_ids.tolist(),
                "top_logprobs": self.top_logprobs.tolist(), "status": "ok"}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> TeacherAnswer:
        """Inverse of `record` (float32 survives the JSON round trip exactly)."""
        k = len(rec["top_ids"][0]) if rec["top_ids"] else 0
        return cls(
            tuple(int(t) for t in rec["answer_ids"]),
            np.asarray(rec["top_ids"], np.int32).reshape(-1, k),
            np.asarray(rec["top_logprobs"], np.float32).reshape(-1, k),
        )

    def canonical(self) -> TeacherAnswer:
        """The same answer as read back from the cache (float32 arrays), so fresh and cached runs match."""
        return TeacherAnswer.from_record(json.loads(json.dumps(self.record(""))))


def teacher_identity(cfg: ml_collections.ConfigDict, suppress_ids: Sequence[int] = ()) -> dict[str, Any]:
    """The run settings besides question and window that determine a teacher output (model, dtype, K, answer
    length, decoding, prompt, chat template, system prompt, barred tokens): `teacher_key`'s other arguments.
    Tools that look answers up in a run's cache build it from the run's config exactly as the run did."""
    identity: dict[str, Any] = {
        "model": str(cfg.model_path), "dtype": cfg.dtype, "k": cfg.cd.top_k,
        "max_answer_tokens": cfg.cd.max_answer_tokens, "decoding": "greedy", "template": cfg.cd.teacher_prompt,
        "chat": cfg.use_chat_template, "system": cfg.system_prompt}
    if suppress_ids:  # absent when empty: caches written before the option stay valid
        identity["suppress_ids"] = list(suppress_ids)
    return identity


def teacher_key(**settings: Any) -> str:
    """Hex digest of the settings that determine a teacher output (question, window, model, K, decoding)."""
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _read(path: Path) -> dict[str, TeacherAnswer]:
    out: dict[str, TeacherAnswer] = {}
    for _, rec in read_jsonl(path):
        try:
            if rec.get("status") != "ok":
                continue
            out.setdefault(rec["key"], TeacherAnswer.from_record(rec))
        except (ValueError, KeyError, TypeError, AttributeError):  # a line this version cannot read: recompute
            continue
    return out


class TeacherCache:
    """The teacher cache in `directory`: reads every shard file at construction, appends to its own one."""

    def __init__(self, directory: Path | str, shard_index: int = 0, shard_count: int = 1):
        self.directory = Path(directory)
        self.path = self.directory / f"teacher_cache{shard_suffix(shard_index, shard_count)}.jsonl"
        self._answers: dict[str, TeacherAnswer] = {}
        if self.directory.is_dir():
            for path in sorted(p for p in self.directory.iterdir() if _FILE.match(p.name)):
                for key, answer in _read(path).items():
                    self._answers.setdefault(key, answer)
        self._file: BinaryIO | None = None

    def __len__(self) -> int:
        return len(self._answers)

    def lookup(self, key: str) -> TeacherAnswer | None:
        """The cached output under `key`, if any."""
        return self._answers.get(key)

    def open_writer(self) -> TeacherCache:
        """Lock this process's file (CacheError if another process holds it) and cut off a torn last line."""
        try:
            self._file = open_append(self.path, hint="give each process its own teacher cache shard")
        except FileBusyError as e:
            raise CacheError(str(e)) from None
        except OSError as e:
            raise CacheError(f"cannot open the teacher cache {self.path}: {e.strerror or e}") from e
        return self

    def append(self, answers: dict[str, TeacherAnswer]) -> None:
        """Durably record `answers` (key -> output) in one write."""
        if self._file is None:
            raise CacheError("the teacher cache is not open for writing; call open_writer() first")
        try:
            append_jsonl(self._file, [a.record(k) for k, a in answers.items()])
        except OSError as e:
            raise CacheError(f"cannot write the teacher cache {self.path}: {e.strerror or e}") from e
        for key, answer in answers.items():
            self._answers.setdefault(key, answer)

    def close(self) -> None:
        """Release the writer lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
