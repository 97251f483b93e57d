"""The run's adapter as a llama.cpp LoRA adapter GGUF (what llama.cpp's convert_lora_to_gguf.py writes).

llama.cpp applies a LoRA pair to the base tensor of the same name as `lora_b @ (lora_a @ x) * alpha / rank`,
where the rank is read from lora_b. In numpy (row-major) terms lora_a is [rank, in] and lora_b [out, rank] in
float32: PEFT's own layout. The architecture is the family's `llama_cpp_arch` (lift_jax.models.families); tensor
names come from the `gguf` package's tensor map for it (the map llama.cpp's converter uses). For a family with
`llama_cpp_rope_interleaved` (Llama) the converter interleaves the rows of the q and k projections for
llama.cpp's rope (the GGUF reader in lift_jax.models.weight_files undoes this for base weights); the rows of
those projections' lora_b get the same interleave, lora_a is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from lift_jax.export.errors import ExportError
from lift_jax.export.run_adapter import RunAdapter
from lift_jax.models.families import family_of, supported_model_types
from lift_jax.models.spec import ModelSpec

_ARCH_BY_NAME = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}


def llama_cpp_arch(model_type: str) -> gguf.MODEL_ARCH:
    """The llama.cpp architecture of a model_type (its family's `llama_cpp_arch`); one llama.cpp does not run
    is an ExportError."""
    family = family_of(model_type) if model_type in supported_model_types() else None
    if family is None or family.llama_cpp_arch not in _ARCH_BY_NAME:
        supported = [t for t in supported_model_types() if family_of(t).llama_cpp_arch in _ARCH_BY_NAME]
        raise ExportError(
            f"model_type {model_type!r} has no llama.cpp LoRA mapping here; gguf-lora supports "
            f"{', '.join(supported)} (use --format merged or peft)"
        )
    return _ARCH_BY_NAME[family.llama_cpp_arch]


def gguf_tensor_name(tensor_map: gguf.TensorNameMap, arch_name: str, module_path: str) -> str:
    """llama.cpp's base tensor name (e.g. `blk.0.attn_q.weight`) for a lift_jax module path."""
    name = tensor_map.get_name(f"model.{module_path}.weight", try_suffixes=(".weight",))
    if name is None:
        raise ExportError(
            f"llama.cpp's {arch_name} architecture has no tensor for LoRA module {module_path}; "
            "export with --format merged or peft instead"
        )
    return name


def interleave_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder the rows of a q/k projection (or its lora_b) per head from Hugging Face's rotate-half pairing
    (row j with j + d/2) to llama.cpp's adjacent pairs (2j with 2j + 1)."""
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_cpp_lora_tensors(adapter: RunAdapter, spec: ModelSpec) -> dict[str, np.ndarray]:
    """{GGUF tensor name: float32 array} of the adapter: `NAME.lora_a` [rank, in], `NAME.lora_b` [out, rank]."""
    arch = llama_cpp_arch(spec.model_type)
    family = spec.family
    arch_name = gguf.MODEL_ARCH_NAMES[arch]
    tensor_map = gguf.get_tensor_name_map(arch, spec.num_layers)
    tensors: dict[str, np.ndarray] = {}
    for path, (a, b) in sorted(adapter.weights.items()):
        name = gguf_tensor_name(tensor_map, arch_name, path)
        if family.llama_cpp_rope_interleaved:  # the rows llama.cpp's converter permutes (its LlamaModel.permute)
            module = path.rsplit(".", 1)[-1]
            if module == family.query_linear:
                b = interleave_rope_rows(b, spec.num_heads)
            elif module == family.key_linear:
                b = interleave_rope_rows(b, spec.num_kv_heads)
        tensors[f"{name}.lora_a"] = np.ascontiguousarray(a, np.float32)
        tensors[f"{name}.lora_b"] = np.ascontiguousarray(b, np.float32)
    return tensors


def write_gguf_lora(adapter: RunAdapter, spec: ModelSpec, path: Path) -> None:
    """Write the adapter to `path` as a llama.cpp LoRA adapter GGUF for the base model `spec`."""
    tensors = llama_cpp_lora_tensors(adapter, spec)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[llama_cpp_arch(spec.model_type)])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(adapter.config.alpha))
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
