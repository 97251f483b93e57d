"""Crash-safe files: atomic replacement of small files, and append-only JSONL that survives a kill -9.

A replaced file is written to a unique temporary file beside it, fsynced, then renamed over it, so a reader
sees the old file or the new one, never half of one. A JSONL file gets whole lines in one write + fsync; a
crash can leave only a torn tail (bytes after the last line break, or after the last complete record), which
readers skip and the next writer cuts off before appending.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lift_jax.errors import LiftError


class FileBusyError(LiftError, RuntimeError):
    """Another process holds the append lock of a JSONL file."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the new contents to; on a clean exit it is fsynced and renamed
    over `path`, on an error it is removed and `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # created like any file (umask)
    tmp.touch(exist_ok=False)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """Replace `path` with `content` (str: UTF-8) atomically."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | Path, data: Any, *, ensure_ascii: bool = True) -> None:
    """Replace `path` with `data` as indented, key-sorted JSON, atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=ensure_ascii))


def read_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every complete line of a JSONL file; the value is None for a line that
    is not valid JSON (the caller decides whether that is corruption). The torn tail is skipped."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                return  # a write a crash cut short
            try:
                yield number, json.loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                yield number, None


def _committed_length(f: BinaryIO, size: int, complete: Callable[[Any], bool]) -> int:
    """Length of the file up to the end of its last line that parses as a `complete` record."""
    start, window = size, 65536
    while start > 0:
        start = max(0, start - window)
        window *= 2
        f.seek(start)
        segments = f.read(size - start).split(b"\n")  # the last segment follows the last line break
        ends = list(itertools.accumulate(len(seg) + 1 for seg in segments[:-1]))
        for i in range(len(segments) - 2, 0 if start > 0 else -1, -1):  # segment 0 may be a partial line
            try:
                rec = json.loads(segments[i])
            except ValueError:
                continue
            if complete(rec):
                return start + ends[i]
    return 0


def _last_line_end(f: BinaryIO, size: int) -> int:
    """Length of the file up to its last line break."""
    start, window = size, 65536
    while start > 0:
        start = max(0, start - window)
        window *= 2
        f.seek(start)
        found = f.read(size - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
    return 0


def open_append(
    path: str | Path, *, complete: Callable[[Any], bool] | None = None, lock: bool = True, hint: str = ""
) -> BinaryIO:
    """Open a JSONL file for appending (creating its directory) with whatever a crash left after the last
    complete record cut off: after the last line break, or with `complete`, after the last line whose record
    satisfies it (a group of lines ends with such a record). With `lock`, no other process may append at the
    same time (FileBusyError, plus `hint`). An OSError is left to the caller, which knows what the file is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+b")  # noqa: SIM115 - returned open
    if lock:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise FileBusyError(f"another process is writing {path}{'; ' + hint if hint else ''}") from None
    size = f.seek(0, os.SEEK_END)
    keep = _last_line_end(f, size) if complete is None else _committed_length(f, size, complete)
    if keep != size:
        f.truncate(keep)
        os.fsync(f.fileno())
    return f


def append_jsonl(f: BinaryIO, records: list[dict[str, Any]], *, ensure_ascii: bool = False) -> None:
    """Write `records` as JSON lines in one write, then flush and fsync."""
    f.write("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in records).encode("utf-8"))
    f.flush()
    os.fsync(f.fileno())
