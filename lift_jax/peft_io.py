"""PEFT interop: write and read `adapter_config.json` + `adapter_model.safetensors`.

The files are what `peft.PeftModel.from_pretrained` loads on the matching transformers model (and what vLLM
serves with `--enable-lora`).
Keys: `base_model.model.model.layers.{i}.{self_attn|mlp}.{name}.lora_{A|B}.weight`; on a multimodal wrapper
(Gemma 3's `Gemma3ForConditionalGeneration`) `base_model.model.model.language_model.layers...`, where
transformers keeps its text decoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from safetensors.numpy import save_file

from lift_jax.durable import atomic_path, write_atomic
from lift_jax.errors import LiftError
from lift_jax.lora import ALL_LINEAR, LoRAConfig, apply_lora, lora_modules
from lift_jax.models.families import all_linears
from lift_jax.models.transformer import Transformer
from lift_jax.models.weight_files import read_safetensors

_PREFIX = "base_model.model.model."
_WRAPPED = "language_model."
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


class AdapterError(LiftError, ValueError):
    """An adapter directory is missing files, uses unsupported PEFT features, or does not fit the model."""


def export_peft_adapter(
    model: Transformer, config: LoRAConfig, directory: str | Path, base_model_name: str = ""
) -> Path:
    """Write the model's LoRA adapter in PEFT format into `directory` (created if needed)."""
    layers = lora_modules(model)
    if not layers:
        raise AdapterError("the model has no LoRA layers to export; call apply_lora first")
    weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for path, layer in layers:
        a, b = jax.device_get((layer.lora_a.get_value(), layer.lora_b.get_value()))
        weights[path] = (np.asarray(a, np.float32).T, np.asarray(b, np.float32).T)
    return write_peft_adapter(weights, config, directory, base_model_name, model.spec.in_wrapper)


def write_peft_adapter(
    weights: dict[str, tuple[np.ndarray, np.ndarray]],
    config: LoRAConfig,
    directory: str | Path,
    base_model_name: str = "",
    wrapped: bool = False,
) -> Path:
    """Write `weights` ({module path: (A [rank, in], B [out, rank])}, PEFT's layout) and `config` as a PEFT
    adapter into `directory` (created if needed); `wrapped`: the base is a multimodal wrapper."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for path, (a, b) in weights.items():
        prefix = _PREFIX + (_WRAPPED if wrapped else "")
        tensors[f"{prefix}{path}.lora_A.weight"] = np.ascontiguousarray(a, np.float32)
        tensors[f"{prefix}{path}.lora_B.weight"] = np.ascontiguousarray(b, np.float32)
    targets = sorted({path.rsplit(".", 1)[-1] for path in weights})
    peft_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "modules_to_save": None,
        "inference_mode": True,
    }
    with atomic_path(directory / WEIGHTS_FILE) as tmp_weights:
        save_file(tensors, str(tmp_weights), metadata={"format": "pt"})
    write_atomic(directory / CONFIG_FILE, json.dumps(peft_config, indent=2))
    return directory


def read_peft_config(directory: str | Path) -> LoRAConfig:
    """The LoRAConfig of a PEFT adapter directory; unsupported PEFT options are an error."""
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise AdapterError(
            f"{path} does not exist; an adapter directory needs {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    cfg = json.loads(path.read_text())
    if cfg.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{path}: peft_type {cfg.get('peft_type')!r} is not LORA")
    for flag in ("use_rslora", "use_dora", "fan_in_fan_out"):
        if cfg.get(flag):
            raise AdapterError(f"{path}: {flag}=true is not supported by lift_jax")
    if cfg.get("modules_to_save"):
        raise AdapterError(f"{path}: modules_to_save {cfg['modules_to_save']} is not supported by lift_jax")
    targets = cfg.get("target_modules") or ALL_LINEAR
    if isinstance(targets, str) and targets != ALL_LINEAR:
        raise AdapterError(
            f"{path}: regex target_modules {targets!r} is not supported; list the module names"
        )
    if isinstance(targets, list):
        targets = tuple(t for t in targets if t in all_linears()) or ALL_LINEAR
    return LoRAConfig(
        rank=int(cfg["r"]),
        alpha=float(cfg["lora_alpha"]),
        dropout=float(cfg.get("lora_dropout", 0.0)),
        targets=targets,
    )


def base_model_name(directory: str | Path) -> str:
    """The `base_model_name_or_path` an adapter directory records ("" if none)."""
    return json.loads((Path(directory) / CONFIG_FILE).read_text()).get("base_model_name_or_path") or ""


def read_peft_weights(directory: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{module path: (A [rank, in], B [out, rank])} of a PEFT adapter, float32 in PEFT's layout; the path is
    lift_jax's (e.g. `layers.0.self_attn.q_proj`). A key that is no LoRA A/B weight, or a layer missing its A
    or B, is an error."""
    weights_path = Path(directory) / WEIGHTS_FILE
    if not weights_path.exists():
        raise AdapterError(f"{weights_path} does not exist")
    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, array in read_safetensors(weights_path):
        name = key.removeprefix(_PREFIX).removeprefix(_WRAPPED).replace(".default.", ".")
        path, _, leaf = name.rpartition(".lora_")
        if not path or leaf not in ("A.weight", "B.weight"):
            raise AdapterError(f"{weights_path}: {key} is not a LoRA A or B weight")
        halves.setdefault(path, {})[leaf[0]] = np.asarray(array, np.float32)
    incomplete = [path for path, pair in halves.items() if len(pair) != 2]
    if incomplete:
        raise AdapterError(f"{weights_path} has only one of lora_A / lora_B for {incomplete[:3]}")
    return {path: (pair["A"], pair["B"]) for path, pair in halves.items()}


def import_peft_adapter(model: Transformer, directory: str | Path) -> LoRAConfig:
    """Load a PEFT LoRA adapter into `model` (wrapping its linears first if needed); returns its config."""
    directory = Path(directory)
    config = read_peft_config(directory)
    if not lora_modules(model):
        apply_lora(model, config)
    layers = dict(lora_modules(model))
    weights = read_peft_weights(directory)
    for path, pair in weights.items():
        if path not in layers:
            raise AdapterError(f"{directory / WEIGHTS_FILE}: {path} names no LoRA layer of this model")
        layer = layers[path]
        for target, array, half in ((layer.lora_a, pair[0], "A"), (layer.lora_b, pair[1], "B")):
            value = array.T
            if value.shape != target.get_value().shape:
                raise AdapterError(
                    f"{path}.lora_{half}: shape {value.shape} != expected {target.get_value().shape} "
                    "(rank or model mismatch)"
                )
            target.set_value(jax.device_put(value, target.get_value().sharding))
    missing = [p for p in layers if p not in weights]
    if missing:
        raise AdapterError(
            f"{directory / WEIGHTS_FILE} lacks weights for {len(missing)} LoRA layers, e.g. {missing[:3]}"
        )
    return config
