"""Export an absorb run's LIFTed model for other runtimes.

- `gguf-lora`: the adapter as a llama.cpp LoRA adapter GGUF (`llama-server -m BASE.gguf --lora FILE.gguf`).
- `merged`: base + adapter as a Hugging Face checkpoint directory (transformers, or vLLM without LoRA).
- `peft`: the PEFT adapter directory as absorb writes it (transformers + PEFT, vLLM `--enable-lora`).

Every format is written under a temporary name beside `out` and renamed into place when complete.
"""

from __future__ import annotations

from pathlib import Path

from lift_jax.export.errors import ExportError
from lift_jax.export.gguf_lora import write_gguf_lora
from lift_jax.export.merged import MERGED_DTYPES, write_merged
from lift_jax.export.run_adapter import RunAdapter, read_run_adapter
from lift_jax.export.staging import staged_output
from lift_jax.models.loader import load_hf_config, model_spec, resolve_source
from lift_jax.models.spec import ModelSpec
from lift_jax.peft_io import write_peft_adapter

FORMATS = ("gguf-lora", "merged", "peft")

__all__ = ["FORMATS", "MERGED_DTYPES", "ExportError", "RunAdapter", "export_run", "read_run_adapter"]


def export_run(
    run_dir: str | Path, fmt: str, out: str | Path, dtype: str = "float32", progress: bool = False
) -> Path:
    """Export the adapter of the absorb run in `run_dir` as `fmt` (one of FORMATS) to `out`; returns `out`.

    `gguf-lora` writes a file, `merged` and `peft` a directory (which must be absent or empty); `dtype`
    (float32 | bfloat16) is the merged weights' dtype.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "merged" and dtype not in MERGED_DTYPES:
        raise ExportError(f"--dtype {dtype} is not supported; use one of {', '.join(MERGED_DTYPES)}")
    adapter = read_run_adapter(run_dir)
    out = Path(out)
    if fmt == "gguf-lora":
        spec = _base_spec(adapter)
        with staged_output(out, is_dir=False) as partial:
            write_gguf_lora(adapter, spec, partial)
    elif fmt == "merged":
        with staged_output(out, is_dir=True) as partial:
            write_merged(adapter, partial, dtype, progress)
    else:
        wrapped = _base_spec(adapter).in_wrapper
        with staged_output(out, is_dir=True) as partial:
            write_peft_adapter(adapter.weights, adapter.config, partial, adapter.base_model_name, wrapped)
    return out


def _base_spec(adapter: RunAdapter) -> ModelSpec:
    source = resolve_source(adapter.model_path)
    return model_spec(source, load_hf_config(source))
