"""`load(path)`: a Hugging Face safetensors directory or a GGUF file -> Flax NNX Transformer + tokenizer.

Each tensor is read (memory-mapped or dequantized) alone, converted, and placed straight onto its sharding,
so the host never holds a second copy of the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh
from tqdm.auto import tqdm

from lift_jax.errors import ConfigError
from lift_jax.models import bundled
from lift_jax.models.families import ModelFamily, family_of, family_of_llama_cpp_arch, is_wrapper
from lift_jax.models.gguf_parse import gguf_field, parsed_gguf, sharing_parses
from lift_jax.models.gguf_spec import gguf_corrected_spec
from lift_jax.models.spec import ModelSpec, spec_from_hf_config, text_decoder_config
from lift_jax.models.transformer import Transformer, abstract_transformer
from lift_jax.models.weight_files import CheckpointError, read_gguf, read_safetensors_dir
from lift_jax.sharding import param_sharding

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "fp32": jnp.float32, "bf16": jnp.bfloat16}
# Multimodal and plain checkpoints nest the text decoder differently.
_PREFIXES = ("model.language_model.", "language_model.model.", "model.")
_IGNORED = re.compile(r"(rotary_emb\.inv_freq|vision_tower|multi_modal_projector|vision_model)")
# Any of these makes a directory's tokenizer loadable; without all of them it holds weights only.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "spiece.model")


@dataclasses.dataclass
class LoadedModel:
    """A loaded checkpoint: the NNX module, its tokenizer (None for a weights-only directory) and where it
    came from."""

    module: Transformer
    tokenizer: Any
    spec: ModelSpec
    hf_config: Any
    source: Path
    gguf_file: str | None
    dtype: jnp.dtype
    mesh: Mesh | None

    def require_tokenizer(self, purpose: str) -> Any:
        """The tokenizer, or a CheckpointError saying that `purpose` needs one when the checkpoint has none."""
        if self.tokenizer is None:
            raise CheckpointError(
                f"{self.source} has weights but no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...); "
                f"{purpose} needs a tokenizer: copy the base model's tokenizer files into that directory"
            )
        return self.tokenizer


@dataclasses.dataclass(frozen=True)
class CheckpointSource:
    """Where the config, weights and tokenizer of a model live."""

    directory: Path
    gguf_file: str | None  # file name inside `directory`, or None for safetensors


def resolve_source(path: str | Path) -> CheckpointSource:
    """Locate a checkpoint: a HF directory, a .gguf file, a directory with one .gguf, or `bundled:<name>`."""
    if str(path).startswith("bundled:"):
        path = bundled.bundled_model_path(str(path).removeprefix("bundled:"))
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return CheckpointSource(p.parent, p.name)
    if p.is_dir():
        if (p / "config.json").exists():
            return CheckpointSource(p, None)
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return CheckpointSource(p, ggufs[0].name)
        raise CheckpointError(
            f"{p} has no config.json and {len(ggufs)} .gguf files; pass the model file itself"
        )
    raise CheckpointError(
        f"model path {p} does not exist; give a Hugging Face model directory, a .gguf file, "
        f"or one of {', '.join('bundled:' + n for n in bundled.BUNDLED_MODELS)}"
    )


def resolve_dtype(dtype: str | jnp.dtype) -> jnp.dtype:
    """'float32' | 'bfloat16' (or a jnp dtype) -> jnp dtype."""
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not supported; use one of {sorted(_DTYPES)}")
        return _DTYPES[dtype]
    return jnp.dtype(dtype).type if jnp.dtype(dtype) in (jnp.float32, jnp.bfloat16) else jnp.float32


def load_hf_config(source: CheckpointSource) -> Any:
    """The transformers config object for the checkpoint (parsed from config.json or GGUF metadata); a model
    type or GGUF architecture lift_jax does not run is an UnsupportedModelError naming it."""
    from transformers import AutoConfig

    if source.gguf_file:
        family_of_llama_cpp_arch(str(gguf_field(parsed_gguf(source.directory / source.gguf_file),
                                                "general.architecture")))
    else:
        model_type = _config_json(source.directory).get("model_type")
        if not is_wrapper(model_type):
            family_of(model_type)

    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    with sharing_parses():
        return AutoConfig.from_pretrained(str(source.directory), local_files_only=True, **kwargs)


def _config_json(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory} has no config.json; point the model path at a Hugging Face "
                              "checkpoint folder or a .gguf file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds no JSON object")
    return config


def _config_scales_rope(hf_config: Any) -> bool:
    """Whether transformers' config already carries a rope scaling (then a GGUF's is not applied again)."""
    params = getattr(text_decoder_config(hf_config), "rope_parameters", None) or {}
    per_type = list(params.values()) if params and all(isinstance(v, dict) for v in params.values()) else [params]
    return any(p.get("rope_type", "default") != "default" for p in per_type)


def model_spec(source: CheckpointSource, hf_config: Any) -> ModelSpec:
    """The ModelSpec of the checkpoint: from its transformers config, plus for a GGUF what llama.cpp reads
    from the file that transformers drops (`gguf_spec.gguf_corrected_spec`)."""
    spec = spec_from_hf_config(hf_config)
    if not source.gguf_file:
        return spec
    return gguf_corrected_spec(spec, source.directory / source.gguf_file, rope=not _config_scales_rope(hf_config))


def load_tokenizer(source: CheckpointSource) -> Any | None:
    """The checkpoint's tokenizer (from the directory or the GGUF vocabulary); None for a directory without
    tokenizer files."""
    from transformers import AutoTokenizer

    if not source.gguf_file and not any((source.directory / name).exists() for name in TOKENIZER_FILES):
        return None

    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    with sharing_parses():
        return AutoTokenizer.from_pretrained(str(source.directory), local_files_only=True, **kwargs)


def hf_name_to_path(name: str, family: ModelFamily) -> tuple[tuple[str | int, ...], bool] | None:
    """Module path of a HF tensor name and whether it is a linear weight to transpose; None if not ours."""
    if _IGNORED.search(name):
        return None
    if name.removeprefix("language_model.").startswith(f"{family.output_head}."):  # a wrapper's untied head
        return (family.output_head, "kernel"), True
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    else:
        return None
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in name.split(".")]
    is_linear = len(parts) >= 2 and parts[-2] in family.linears
    if is_linear and parts[-1] == "weight":
        parts[-1] = "kernel"
    return tuple(parts), is_linear and parts[-1] == "kernel"


def _variables_by_path(module: nnx.Module) -> dict[tuple[str | int, ...], nnx.Variable]:
    return {tuple(path): node for path, node in nnx.iter_graph(module) if isinstance(node, nnx.Variable)}


def _place(array: np.ndarray, path: str, dtype: jnp.dtype, mesh: Mesh | None, family: ModelFamily) -> jax.Array:
    host = np.asarray(array, dtype=dtype)
    if mesh is None:
        return jax.device_put(host)
    return jax.device_put(host, param_sharding(path, host.shape, mesh, family))


def _tensors(source: CheckpointSource, spec: ModelSpec):
    if source.gguf_file:
        return read_gguf(source.directory / source.gguf_file, spec.num_heads, spec.num_kv_heads)
    return read_safetensors_dir(source.directory)


def load(
    path: str | Path, dtype: str | jnp.dtype = "float32", mesh: Mesh | None = None, progress: bool = False
) -> LoadedModel:
    """Load a Llama / Gemma 2/3 / Qwen 2/3 checkpoint into a Flax NNX Transformer with its tokenizer (None
    for a weights-only directory: `LoadedModel.require_tokenizer` is the clear error where one is needed).

    `path`: a Hugging Face directory (model.safetensors or sharded index), a .gguf file, or `bundled:<name>`.
    `mesh`: if given, each weight goes straight to its partition-rule sharding on it.
    """
    source = resolve_source(path)
    jdtype = resolve_dtype(dtype)
    if source.gguf_file:
        parsed_gguf(source.directory / source.gguf_file)  # a clear error for a file that is not GGUF, first
    hf_config = load_hf_config(source)
    spec = model_spec(source, hf_config)
    module = abstract_transformer(spec, jdtype)
    variables = _variables_by_path(module)
    filled: set[tuple[str | int, ...]] = set()
    tensors = _tensors(source, spec)
    for name, array in tqdm(tensors, desc="loading weights", disable=not progress, leave=False):
        mapped = hf_name_to_path(name, spec.family)
        if mapped is None:
            continue
        target, transpose = mapped
        if target not in variables:
            if target == (spec.family.output_head, "kernel") and spec.tie_embeddings:
                continue  # some tied checkpoints still store a copy of the embedding
            raise CheckpointError(
                f"{source.directory}: tensor {name} has no place in a {spec.model_type} model"
            )
        var = variables[target]
        value = array.T if transpose else array
        if tuple(value.shape) != tuple(var.get_value().shape):
            raise CheckpointError(
                f"{name}: checkpoint shape {tuple(value.shape)} != model shape {tuple(var.get_value().shape)}"
            )
        var.set_value(_place(value, "/".join(map(str, target)), jdtype, mesh, spec.family))
        filled.add(target)
    missing = sorted("/".join(map(str, p)) for p in set(variables) - filled)
    if missing:
        raise CheckpointError(
            f"{source.directory}: checkpoint lacks {len(missing)} tensors, e.g. {missing[:5]}"
        )
    return LoadedModel(
        module=module,
        tokenizer=load_tokenizer(source),
        spec=spec,
        hf_config=hf_config,
        source=source.directory,
        gguf_file=source.gguf_file,
        dtype=jdtype,
        mesh=mesh,
    )
