"""A safetensors file written one tensor at a time: the header (every name, dtype and shape) first, then each
tensor's bytes at its offset in whatever order they arrive, so a model never needs a second host copy."""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np

_DTYPE_NAMES = {np.dtype(np.float32): "F32", np.dtype(ml_dtypes.bfloat16): "BF16"}


class StreamingSafetensorsWriter:
    """Write the tensors `layout` ({name: shape}, all of `dtype`) into `path`; `close` checks every one came."""

    def __init__(self, path: Path, layout: dict[str, tuple[int, ...]], dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.layout = layout
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        self.offsets: dict[str, int] = {}
        offset = 0
        for name, shape in layout.items():
            size = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
            header[name] = {
                "dtype": _DTYPE_NAMES[self.dtype],
                "shape": list(shape),
                "data_offsets": [offset, offset + size],
            }
            self.offsets[name] = offset
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)  # the data section starts 8-byte aligned
        self.data_start = 8 + len(encoded)
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.file.write(len(encoded).to_bytes(8, "little") + encoded)
        self.file.truncate(self.data_start + offset)
        self.written: set[str] = set()

    def write(self, name: str, array: np.ndarray) -> None:
        """Write tensor `name` (cast to the file's dtype); its shape must be the declared one."""
        if name not in self.layout:
            raise ValueError(f"tensor {name} is not in the declared layout")
        if tuple(array.shape) != tuple(self.layout[name]):
            raise ValueError(f"tensor {name}: shape {tuple(array.shape)} != declared {tuple(self.layout[name])}")
        self.file.seek(self.data_start + self.offsets[name])
        self.file.write(np.ascontiguousarray(array, self.dtype).tobytes())
        self.written.add(name)

    def abort(self) -> None:
        """Close without the completeness check (the caller is failing anyway)."""
        self.file.close()

    def close(self) -> None:
        """Flush and close; a declared tensor never written is an error."""
        self.file.close()
        missing = [name for name in self.layout if name not in self.written]
        if missing:
            raise ValueError(f"{len(missing)} declared tensors were never written, e.g. {missing[:3]}")
