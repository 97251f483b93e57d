"""Command-line plumbing shared by absorb, synth, ask and the eval harnesses.

`--config NAME_OR_PATH` picks an ml_collections config file (a bare name resolves to `configs/`), and
`--config.a.b=value` overrides a field, typed like the field it replaces; an unknown field is an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import ml_collections

from lift_jax.config import load_config_file
from lift_jax.errors import LiftError, MissingInputError


class UsageError(LiftError, ValueError):
    """Bad command-line input: reported as one line, exit code 2."""


def enable_compilation_cache(directory: str | None = None) -> None:
    """Persist XLA compilations across runs (`LIFT_JAX_COMPILATION_CACHE`, default ~/.cache/lift_jax/xla).

    Compilations under 1 s are not stored unless `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` says otherwise
    (the test suite sets it to 0 to share every compilation between its processes)."""
    import jax

    path = directory or os.environ.get("LIFT_JAX_COMPILATION_CACHE") or str(Path.home() / ".cache/lift_jax/xla")
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # when set, jax has read it already
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr as one line and exit."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):  # a bar left open by the failure: end its line first
        bar.close()
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{text!r} is not a boolean (use true or false)")


def _coerce(current: Any, text: str, key: str) -> Any:
    try:
        if isinstance(current, bool):
            return _parse_bool(text)
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError as e:
        raise UsageError(f"--config.{key}={text}: expected {type(current).__name__}") from e
    if isinstance(current, (tuple, list)):
        return tuple(x.strip() for x in text.split(",") if x.strip())
    return text


def apply_override(cfg: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Set the dotted field `key` of `cfg` from its command-line text."""
    *parents, leaf = key.split(".")
    node = cfg
    for i, part in enumerate(parents):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise UsageError(f"unknown config key {'.'.join(parents[: i + 1])!r} in --config.{key}")
        node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        known = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else ""
        raise UsageError(f"unknown config key {key!r}; known keys here: {known}")
    if isinstance(node[leaf], ml_collections.ConfigDict):
        raise UsageError(f"--config.{key} is a group; set one of its fields, e.g. --config.{key}.<field>=...")
    node[leaf] = _coerce(node[leaf], text, key)


def parse_config_args(argv: Sequence[str], default_config: str, usage: str) -> ml_collections.ConfigDict:
    """Parse `--config NAME` and `--config.<field>=value` (and `--help`) from argv into a ConfigDict."""
    args = list(argv)
    if "-h" in args or "--help" in args:
        print(usage)
        raise SystemExit(0)
    config_name = default_config
    overrides: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" or arg.startswith("--config="):
            if arg == "--config":
                if i + 1 >= len(args):
                    raise UsageError("--config needs a config name or path")
                config_name, i = args[i + 1], i + 1
            else:
                config_name = arg.split("=", 1)[1]
        elif arg.startswith("--config."):
            key, sep, value = arg[len("--config."):].partition("=")
            if not sep:
                if i + 1 >= len(args):
                    raise UsageError(f"{arg} needs a value")
                value, i = args[i + 1], i + 1
            overrides.append((key, value))
        else:
            raise UsageError(f"unknown argument {arg!r}; see --help")
        i += 1
    try:
        cfg = load_config_file(config_name)
    except MissingInputError as e:  # an unknown config name is bad usage of the command line
        raise UsageError(str(e)) from e
    for key, value in overrides:
        apply_override(cfg, key, value)
    return cfg
