"""Every shipped run config fits the schema (base_config), and its settings train a tiny model of its family."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import ml_collections
import pytest

from lift_jax.absorbing import absorb_document
from lift_jax.config import REPO_CONFIGS, base_config, load_config_file
from lift_jax.models import load
from lift_jax.sharding import make_mesh

FAMILY = {"llama3_8b": "llama3", "gemma2_9b": "gemma2", "qwen3_8b": "qwen3", "gemma3_270m": "gemma3",
          "smollm2_135m": "llama_tied"}


def _schema_errors(cfg: ml_collections.ConfigDict, base: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    errors = [f"{prefix}{key} missing" for key in base if key not in cfg]
    for key, value in cfg.items():
        if key not in base:
            errors.append(f"{prefix}{key} is not a field of base_config")
        elif isinstance(base[key], ml_collections.ConfigDict):
            if not isinstance(value, ml_collections.ConfigDict):
                errors.append(f"{prefix}{key} must be a group")
            else:
                errors += _schema_errors(value, base[key], f"{prefix}{key}.")
        elif key == "targets":  # lora.targets: "all-linear" or a tuple of module names
            if not isinstance(value, (str, tuple, list)):
                errors.append(f"{prefix}{key}: {value!r} is not a name or a list of names")
        elif isinstance(base[key], float):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                errors.append(f"{prefix}{key}: {value!r} is not a number")
        elif type(value) is not type(base[key]):
            errors.append(f"{prefix}{key}: {value!r} is not a {type(base[key]).__name__}")
    return errors


def test_every_run_config_is_covered_and_fits_the_schema():
    names = sorted(p.stem for p in REPO_CONFIGS.glob("*.py") if not p.stem.startswith("eval_"))
    assert names == sorted(FAMILY)
    for name in names:
        assert _schema_errors(load_config_file(name), base_config()) == [], name


def test_the_schema_check_catches_a_misspelt_or_mistyped_field():
    cfg = base_config()
    cfg.train.learning_rate = 1e-4
    cfg.lora = ml_collections.ConfigDict({**cfg.lora.to_dict(), "rank": "16"})  # a group replaced wholesale
    assert sorted(_schema_errors(cfg, base_config())) == ["lora.rank: '16' is not a int",
                                                          "train.learning_rate is not a field of base_config"]


@pytest.mark.parametrize("name", ["llama3_8b", "gemma2_9b", "qwen3_8b", "gemma3_270m"])
def test_one_training_step_with_the_configs_settings_on_a_tiny_model_of_its_family(
    name, tiny_checkpoints, tmp_path
):
    """The config as shipped (dtype, LoRA rank and targets, optimizer, batch size, mesh axes), on four devices
    like one accelerator host, with only what a tiny model and one step need changed."""
    cfg = load_config_file(name)
    cfg.model_path = str(tiny_checkpoints[FAMILY[name]])
    cfg.method, cfg.train.epochs, cfg.raw_chunk_tokens = "raw", 1, 256  # one chunk, one step, no generator
    cfg.train.max_length = 64
    cfg.ask.measure_first_token = False
    cfg.output_dir = str(tmp_path / "run")
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor, devices=jax.devices()[:4])
    loaded = load(cfg.model_path, dtype=cfg.dtype, mesh=mesh)
    summary = absorb_document(loaded, mesh, cfg, "Item one weighs four grams.", progress=False)
    assert summary["steps"] == 1 and summary["loss_tokens"] > 0
    record = json.loads((Path(cfg.output_dir) / "metrics.jsonl").read_text())
    assert math.isfinite(record["loss"]) and record["loss"] > 0
    assert (Path(cfg.output_dir) / "adapter" / "adapter_model.safetensors").exists()
    assert loaded.module.layers[0].self_attn.q_proj.rank == cfg.lora.rank


def test_lift_cd_resolves_the_auto_prompt_to_questions_only_and_other_methods_refuse_it():
    from lift_jax.config import validate_method, with_method_defaults
    from lift_jax.errors import ConfigError

    cfg = base_config()
    cfg.method = "lift+cd"
    resolved = with_method_defaults(cfg)
    assert resolved.generator.prompt == "fewshot-questions" and cfg.generator.prompt == "auto"  # a copy
    cfg.generator.kind = "openai"  # a server-side model writes the paper's QA JSON; its answers are dropped
    assert with_method_defaults(cfg).generator.prompt == "auto"
    cfg.method, cfg.generator.kind = "lift", "local"
    assert with_method_defaults(cfg).generator.prompt == "auto"
    cfg.generator.prompt = "fewshot-questions"
    with pytest.raises(ConfigError, match="only method lift\\+cd can train on"):
        validate_method(cfg)


@pytest.mark.parametrize("prompt, message", [
    ("Answer {question}", "must contain {document} and {question} and no other field, got fields \\['question'\\]"),
    ("{document} {question} {answer}", "got fields \\['answer', 'document', 'question'\\]"),
    ("{document} {question", "is not a valid format string"),
])
def test_a_teacher_prompt_without_its_two_fields_is_a_config_error(prompt, message):
    from lift_jax.config import validate_method
    from lift_jax.errors import ConfigError

    cfg = base_config()
    cfg.method, cfg.cd.teacher_prompt = "lift+cd", prompt
    with pytest.raises(ConfigError, match=message):
        validate_method(cfg)


def test_suppress_words_are_comma_separated_single_words():
    from lift_jax.config import suppressed_words, validate_method
    from lift_jax.errors import ConfigError

    cfg = base_config()
    cfg.method, cfg.cd.suppress_words = "lift+cd", " document, passage,,"
    validate_method(cfg)
    assert suppressed_words(cfg.cd) == ["document", "passage"]
    cfg.cd.suppress_words = "document,the passage"
    with pytest.raises(ConfigError, match="cd.suppress_words holds 'the passage'; give single words"):
        validate_method(cfg)


def test_a_negative_cloze_count_is_a_config_error():
    from lift_jax.config import validate_method
    from lift_jax.errors import ConfigError

    cfg = base_config()
    cfg.method, cfg.cd.cloze_per_sentence = "lift+cd", 2
    validate_method(cfg)
    cfg.cd.cloze_per_sentence = -1
    with pytest.raises(ConfigError, match="cd.cloze_per_sentence must not be negative, got -1"):
        validate_method(cfg)
