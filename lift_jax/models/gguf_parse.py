"""One parse of a GGUF file per process: the header, metadata and tensor table of a file, kept while the file
is unchanged.

Parsing a GGUF file (gguf.GGUFReader) walks every metadata array element by element (a 49k-token vocabulary and
its merges), seconds per file, and loading one checkpoint needs it three times: transformers parses the file
for the config and again for the tokenizer, the weights are read from it a third time. `sharing_parses()` makes
all three use one parse; the tensor data itself stays a read-only memory map of the file, read on demand.
The parse indexes the map as a plain ndarray: numpy.memmap's per-slice Python overhead made it 3-4x slower.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lift_jax.errors import CheckpointError


@functools.lru_cache(maxsize=1)
def _plain_array_reader() -> type:
    import numpy as np
    from gguf.gguf_reader import GGUFReader  # the class itself: sharing_parses() replaces only `gguf.GGUFReader`

    class PlainArrayReader(GGUFReader):
        """GGUFReader whose `data` is the file's memory map viewed as a plain ndarray (same pages, no copy)."""

        @property
        def data(self) -> np.ndarray:
            return self._plain_data

        @data.setter
        def data(self, value: np.ndarray) -> None:
            self._plain_data = value.view(np.ndarray)

    return PlainArrayReader


@functools.lru_cache(maxsize=4)
def _parse(path: str, mtime_ns: int, size: int) -> Any:
    try:
        return _plain_array_reader()(path)
    except Exception as e:  # gguf raises ValueError, struct and index errors alike on a file it cannot read
        raise CheckpointError(
            f"{path} is not a readable GGUF file ({type(e).__name__}: {e}); pass a .gguf model file, a Hugging "
            "Face directory or bundled:<name>"
        ) from e


def parsed_gguf(path: str | os.PathLike[str]) -> Any:
    """The gguf.GGUFReader of `path`, parsed once per process while the file's modification time and size stay
    the same (a rewritten file is parsed again). A file that is not GGUF is a CheckpointError."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _parse(str(resolved), stat.st_mtime_ns, stat.st_size)


_lock = threading.Lock()
_sharing = 0  # blocks inside sharing_parses(), over all threads
_original: Any = None


def _shared_reader_class(original: type) -> type:
    class SharedReader(original):  # type: ignore[misc, valid-type]
        def __new__(cls, path: str | os.PathLike[str], mode: str = "r") -> Any:
            # An instance of `original`, not of this class: Python then skips __init__, the parse is not redone.
            return parsed_gguf(path) if mode == "r" else original(path, mode)

    return SharedReader


@contextlib.contextmanager
def sharing_parses() -> Iterator[None]:
    """While the block runs, every read-only `gguf.GGUFReader(path)` (transformers' included) returns
    `parsed_gguf(path)` instead of parsing the file again; writable readers are made as usual."""
    import gguf

    global _sharing, _original
    with _lock:
        if _sharing == 0:
            _original = gguf.GGUFReader
            gguf.GGUFReader = _shared_reader_class(_original)
        _sharing += 1
    try:
        yield
    finally:
        with _lock:
            _sharing -= 1
            if _sharing == 0:
                gguf.GGUFReader = _original


def gguf_field(reader: Any, key: str) -> Any:
    """The value of metadata field `key` of a parsed GGUF (None if the file has no such field)."""
    field = reader.fields.get(key)
    return None if field is None else field.contents()
