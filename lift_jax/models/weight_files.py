"""Read model weight tensors one at a time from safetensors files or a GGUF file.

Every reader yields (Hugging Face tensor name, numpy array in Hugging Face's layout); nothing is unpickled.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import ml_dtypes
import numpy as np

from lift_jax.errors import CheckpointError
from lift_jax.models.families import LLAMA_CPP_BLOCK_NAMES, ModelFamily, family_of_llama_cpp_arch
from lift_jax.models.gguf_parse import parsed_gguf

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def safetensors_files(model_dir: Path) -> list[Path]:
    """The safetensors shards of a Hugging Face model directory (single file or sharded index)."""
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = sorted({model_dir / name for name in weight_map.values()})
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise CheckpointError(f"{index} names shards that are missing: {', '.join(missing)}")
        return files
    single = model_dir / "model.safetensors"
    if single.exists():
        return [single]
    found = sorted(model_dir.glob("*.safetensors"))
    if found:
        return found
    raise CheckpointError(
        f"no model.safetensors or model.safetensors.index.json in {model_dir}; "
        "save the model with save_pretrained(safe_serialization=True) or pass a .gguf file"
    )


def read_safetensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) from one safetensors file, reading one tensor at a time.

    Plain reads rather than a memory map: mapped pages would stay resident beside the device copy.
    """
    with open(path, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        header.pop("__metadata__", None)
        for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            if info["dtype"] not in _SAFETENSORS_DTYPES:
                raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
            start, end = info["data_offsets"]
            f.seek(8 + header_len + start)
            buffer = f.read(end - start)
            if len(buffer) != end - start:
                raise CheckpointError(f"{path} is truncated at tensor {name}")
            dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]])
            yield name, np.frombuffer(buffer, dtype=dtype).reshape(info["shape"])


def read_safetensors_dir(model_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield every tensor of a (possibly sharded) Hugging Face safetensors checkpoint."""
    for path in safetensors_files(model_dir):
        yield from read_safetensors(path)


_GGUF_GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def _gguf_to_hf_name(name: str, family: ModelFamily) -> str | None:
    stem, _, suffix = name.rpartition(".")
    if stem in _GGUF_GLOBAL_NAMES:
        return f"{_GGUF_GLOBAL_NAMES[stem]}.{suffix}"
    parts = stem.split(".")
    if len(parts) != 3 or parts[0] != "blk":
        return None
    block, kind = parts[1], parts[2]
    block_names = dict(LLAMA_CPP_BLOCK_NAMES, ffn_norm=family.llama_cpp_ffn_norm)
    if kind not in block_names:
        return None
    return f"model.layers.{block}.{block_names[kind]}.{suffix}"


def _unpermute_rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's q/k row interleave, restoring Hugging Face's rotate-half layout."""
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def read_gguf(path: Path, num_heads: int, num_kv_heads: int) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (Hugging Face name, float32 array) from a GGUF file, dequantizing one tensor at a time."""
    import gguf

    reader = parsed_gguf(path)
    family = family_of_llama_cpp_arch(reader.fields["general.architecture"].contents())
    for tensor in reader.tensors:
        hf_name = _gguf_to_hf_name(tensor.name, family)
        if hf_name is None:
            continue
        w = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
        w = w.reshape(tuple(int(d) for d in reversed(tensor.shape)))
        kind = tensor.name.split(".")[-2]
        if family.llama_cpp_rope_interleaved and kind in ("attn_q", "attn_k"):
            w = _unpermute_rope_rows(w, num_heads if kind == "attn_q" else num_kv_heads)
        if family.gemma_norms and tensor.name.endswith("norm.weight"):
            w = w - 1.0  # llama.cpp stores (1 + w) norm scales
        yield hf_name, w
