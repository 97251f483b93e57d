"""Write an export under a temporary sibling name and rename it into place only when it is complete."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from lift_jax.export.errors import ExportError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_output_path(out: Path, is_dir: bool) -> None:
    """Refuse an output that would replace a directory with content or a file by a directory (an existing
    file output is replaced)."""
    if out.is_dir() and (not is_dir or any(out.iterdir())):
        raise ExportError(f"--out {out} is a directory that is not empty; remove it or pick another path")
    if is_dir and out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, but this format writes a directory; pick another path")


@contextlib.contextmanager
def staged_output(out: Path, is_dir: bool) -> Iterator[Path]:
    """Yield `.NAME.partial` beside `out` (a fresh directory if `is_dir`) to write into; on success it is
    renamed to `out`, on any error removed, so `out` is either as before or complete. A partial left by a
    killed export is cleared first."""
    out = Path(os.path.realpath(out))  # a symlink is written through; `.` gets a name to put the partial beside
    if is_dir and out == Path.cwd().resolve():
        raise ExportError(f"--out {out} is the current directory; pick a new or empty folder elsewhere")
    check_output_path(out, is_dir)
    partial = out.parent / f".{out.name}.partial"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove(partial)
        if is_dir:
            partial.mkdir()
        else:
            partial.touch()
    except OSError as e:
        raise ExportError(f"cannot write --out {out}: {e.strerror or e} ({e.filename or partial})") from e
    try:
        yield partial
        if is_dir and out.is_dir():
            out.rmdir()  # empty (checked above); a directory cannot be renamed onto one
        os.replace(partial, out)
    except BaseException:
        _remove(partial)
        raise
