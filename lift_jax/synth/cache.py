"""Crash-safe, append-only JSONL cache of generated QA pairs, one file per writing process, plus a manifest.

A sentence is written as one group of lines, fsynced together:
    {"key", "sentence_index", "question", "answer"}            one line per pair, then the terminal line
    {"key", "sentence_index", "status": "ok", "n_pairs": k}    or {"status": "failed", "error": ...}
A sentence counts as cached only once its terminal line is on disk with all its pairs before it; a torn last
line or an unfinished group (a crash mid-write) is ignored when reading and cut off before the next append.
Failed sentences are retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lift_jax.durable import FileBusyError, append_jsonl, open_append, read_jsonl, write_json_atomic
from lift_jax.errors import LiftError
from lift_jax.synth.parse import QAPair

FORMAT = "lift_jax.qa_cache/1"
_SHARD_FILE = re.compile(r"^qa_cache(?:\.p(\d+)-of-(\d+))?\.jsonl$")


class CacheError(LiftError, RuntimeError):
    """The QA cache cannot be written (another process holds it, or the directory is unusable)."""


@dataclasses.dataclass(frozen=True)
class CachedSentence:
    """A completed sentence read from the cache."""

    key: str
    sentence_index: int
    pairs: tuple[QAPair, ...]


def sentence_key(**settings: Any) -> str:
    """Hex digest of the JSON-serialised settings that determine a sentence's pairs."""
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def shard_suffix(shard_index: int = 0, shard_count: int = 1) -> str:
    """'' for a single process, `.p{index}-of-{count}` for one of several."""
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard index {shard_index} is outside [0, {shard_count})")
    return "" if shard_count == 1 else f".p{shard_index}-of-{shard_count}"


def cache_files(directory: Path) -> list[Path]:
    """Every shard file of the cache in `directory`, the single-process file first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _SHARD_FILE.match(p.name)]
    return sorted(found, key=lambda p: (p.name != "qa_cache.jsonl", p.name))


def _read_file(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """('sentence', record) for each complete sentence group, ('failed', record) for each failure line."""
    key: str | None = None
    pairs: list[QAPair] = []
    for _, rec in read_jsonl(path):
        if not isinstance(rec, dict) or "key" not in rec:
            key, pairs = None, []  # the group this line belonged to is incomplete
            continue
        rec_key = rec["key"]
        status = rec.get("status")
        if status is None:
            if rec_key != key:
                key, pairs = rec_key, []
            pairs.append(QAPair(rec.get("question"), rec.get("answer")))
            continue
        group = pairs if rec_key == key else []
        if status == "failed":
            yield "failed", rec
        elif status == "ok" and rec.get("n_pairs") == len(group):
            yield "sentence", {**rec, "pairs": tuple(group)}
        key, pairs = None, []


def is_terminal(record: Any) -> bool:
    """Whether a cache line ends a group (a sentence's `ok` / `failed` line, a judge verdict): a crash-cut
    group's lines after the last terminal line are cut off before the next append."""
    return isinstance(record, dict) and "status" in record


class QACache:
    """The QA cache in `directory`: reads every shard file, writes this process's own one.

    Reading happens at construction; nothing is created on disk until `open_writer()`.
    """

    def __init__(self, directory: Path | str, shard_index: int = 0, shard_count: int = 1):
        self.directory = Path(directory)
        suffix = shard_suffix(shard_index, shard_count)
        self.path = self.directory / f"qa_cache{suffix}.jsonl"
        self.manifest_path = self.directory / f"manifest{suffix}.json"
        self._done: dict[str, CachedSentence] = {}
        self._failures: dict[str, int] = {}
        self._file: BinaryIO | None = None
        for path in cache_files(self.directory):
            for kind, rec in _read_file(path):
                if kind == "failed":
                    self._failures[rec["key"]] = self._failures.get(rec["key"], 0) + 1
                elif rec["key"] not in self._done:
                    self._done[rec["key"]] = CachedSentence(rec["key"], rec["sentence_index"], rec["pairs"])

    def lookup(self, key: str) -> CachedSentence | None:
        """The completed sentence stored under `key`, if any."""
        return self._done.get(key)

    def failures(self, key: str) -> int:
        """How many times generation for `key` was recorded as failed."""
        return self._failures.get(key, 0)

    def completed(self) -> list[CachedSentence]:
        """Every completed sentence, in the order it entered the cache."""
        return list(self._done.values())

    def open_writer(self) -> QACache:
        """Create the directory, lock this process's file and cut off a torn last line left by a crash."""
        try:
            self._file = open_append(self.path, complete=is_terminal, hint="give each process its own shard")
        except FileBusyError as e:
            raise CacheError(str(e)) from None
        except OSError as e:
            raise CacheError(f"cannot open the QA cache {self.path}: {e.strerror or e}") from e
        return self

    def _append(self, records: list[dict[str, Any]]) -> None:
        if self._file is None:
            raise CacheError("the QA cache is not open for writing; call open_writer() first")
        try:
            append_jsonl(self._file, records)
        except OSError as e:
            raise CacheError(f"cannot write the QA cache {self.path}: {e.strerror or e}") from e

    def append_ok(self, key: str, sentence_index: int, pairs: list[QAPair]) -> None:
        """Durably record a sentence's pairs followed by its terminal `ok` line."""
        lines = [{"key": key, "sentence_index": sentence_index, "question": q, "answer": a} for q, a in pairs]
        lines.append({"key": key, "sentence_index": sentence_index, "status": "ok", "n_pairs": len(pairs)})
        self._append(lines)
        self._done.setdefault(key, CachedSentence(key, sentence_index, tuple(pairs)))

    def append_failed(self, key: str, sentence_index: int, error: str) -> None:
        """Durably record that generation for a sentence failed (it is retried on the next run)."""
        self._append([{"key": key, "sentence_index": sentence_index, "status": "failed", "error": error}])
        self._failures[key] = self._failures.get(key, 0) + 1

    def write_manifest(self, settings: dict[str, Any], summary: dict[str, Any]) -> None:
        """Atomically replace this process's manifest (settings of the latest run and its summary)."""
        manifest = {
            "format": FORMAT,
            "cache_file": self.path.name,
            "settings": settings,
            "summary": summary,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            write_json_atomic(self.manifest_path, manifest, ensure_ascii=False)
        except OSError as e:
            raise CacheError(f"cannot write the QA cache manifest {self.manifest_path}: {e.strerror or e}") from e

    def close(self) -> None:
        """Release the writer lock."""
        if self._file is not None:
            self._file.close()
            self._file = None


def iter_qa_pairs(directory: Path | str, keys: set[str] | None = None) -> Iterator[tuple[int, QAPair]]:
    """(sentence index, pair) for every cached pair in all shard files of `directory`, in cache order;
    with `keys`, only sentences of those keys (the current document and settings)."""
    for sentence in QACache(directory).completed():
        if keys is None or sentence.key in keys:
            for pair in sentence.pairs:
                yield sentence.sentence_index, pair
