"""Base model + the run's adapter merged into a Hugging Face checkpoint directory.

The base is read one tensor at a time (dequantized to float32 if it is a GGUF), the adapter's update
scaling * B @ A is added in float32 and the sum cast to the asked dtype: the weights of lift_jax's own merged
model. config.json and the tokenizer files are what transformers derives from the base (its config.json and
tokenizer, or for a GGUF base the config and tokenizer transformers reads out of the GGUF); a directory base's
generation_config.json is copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from lift_jax.export.errors import ExportError
from lift_jax.export.run_adapter import RunAdapter
from lift_jax.export.safetensors_writer import StreamingSafetensorsWriter
from lift_jax.models.loader import (
    CheckpointSource,
    hf_name_to_path,
    load_hf_config,
    load_tokenizer,
    model_spec,
    resolve_source,
)
from lift_jax.models.spec import ModelSpec, text_decoder_config
from lift_jax.models.transformer import abstract_transformer
from lift_jax.models.weight_files import read_gguf, read_safetensors_dir

MERGED_DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
WEIGHTS_FILE = "model.safetensors"
GENERATION_CONFIG = "generation_config.json"


def hf_weight_name(path: tuple[str | int, ...]) -> str:
    """The Hugging Face tensor name of a lift_jax base-weight path (a linear's `kernel` is HF's `weight`)."""
    name = ".".join("weight" if p == "kernel" else str(p) for p in path)
    return name if path[0] == "lm_head" else f"model.{name}"


def decoder_layout(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """{Hugging Face name: Hugging Face shape} of every weight of the decoder `spec` describes."""
    module = abstract_transformer(spec)
    layout = {}
    for path, node in nnx.iter_graph(module):
        if isinstance(node, nnx.Param):
            shape = tuple(node.get_value().shape)
            layout[hf_weight_name(tuple(path))] = shape[::-1] if path[-1] == "kernel" else shape
    return layout


def decoder_config(hf_config: Any) -> Any:
    """The config of the text decoder lift_jax runs (a multimodal Gemma 3's text_config), with `architectures`
    set to transformers' causal-LM class for it when the source had none (GGUF configs have none)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    text = text_decoder_config(hf_config)
    config = text.__class__.from_dict(text.to_dict())
    if text is not hf_config and getattr(hf_config, "eos_token_id", None) is not None:
        config.eos_token_id = hf_config.eos_token_id  # a wrapper's own eos ids are the ones transformers uses
    if not getattr(config, "architectures", None):
        config.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]]
    return config


def base_tensors(source: CheckpointSource, spec: ModelSpec):
    """(Hugging Face name, array in HF layout) of every tensor of the base checkpoint, one at a time."""
    if source.gguf_file:
        return read_gguf(source.directory / source.gguf_file, spec.num_heads, spec.num_kv_heads)
    return read_safetensors_dir(source.directory)


def write_merged_weights(
    adapter: RunAdapter, source: CheckpointSource, spec: ModelSpec, path: Path, dtype: np.dtype, progress: bool
) -> None:
    """Write base + adapter update as one safetensors file of `dtype` with Hugging Face's names."""
    layout = decoder_layout(spec)
    updates = {f"model.{module}.weight": module for module in adapter.weights}
    unknown = sorted(set(updates) - set(layout))
    if unknown:
        raise ExportError(f"the adapter updates {unknown[:3]}, which the {spec.model_type} base has no weight for")
    writer = StreamingSafetensorsWriter(path, layout, dtype)
    try:
        tensors = tqdm(base_tensors(source, spec), desc="merging", total=len(layout), disable=not progress, leave=False)
        for name, array in tensors:
            mapped = hf_name_to_path(name, spec.family)
            if mapped is None:
                continue
            hf_name = hf_weight_name(mapped[0])
            if hf_name == "lm_head.weight" and spec.tie_embeddings:
                continue  # a tied checkpoint's stored copy of the embedding
            if hf_name not in layout:
                raise ExportError(f"{source.directory}: tensor {name} has no place in a {spec.model_type} model")
            if hf_name in updates:
                array = np.asarray(array, np.float32) + adapter.delta(updates[hf_name])
            writer.write(hf_name, array)
    except BaseException:
        writer.abort()
        raise
    writer.close()


def write_merged(adapter: RunAdapter, directory: Path, dtype: str = "float32", progress: bool = False) -> None:
    """Write the merged model into `directory`: config.json, model.safetensors and the tokenizer files, which
    `transformers.AutoModelForCausalLM.from_pretrained(directory)` loads."""
    if dtype not in MERGED_DTYPES:
        raise ExportError(f"--dtype {dtype} is not supported; use one of {', '.join(MERGED_DTYPES)}")
    source = resolve_source(adapter.model_path)
    hf_config = load_hf_config(source)
    spec = model_spec(source, hf_config)
    tokenizer = load_tokenizer(source)
    if tokenizer is None:
        raise ExportError(f"{source.directory} has no tokenizer files; copy the base model's tokenizer files there")
    write_merged_weights(adapter, source, spec, directory / WEIGHTS_FILE, MERGED_DTYPES[dtype], progress)
    config = decoder_config(hf_config)
    config.dtype = dtype
    config.save_pretrained(directory)
    if not source.gguf_file and (source.directory / GENERATION_CONFIG).exists():  # stop ids, sampling defaults
        shutil.copy2(source.directory / GENERATION_CONFIG, directory / GENERATION_CONFIG)
    tokenizer.save_pretrained(directory)
