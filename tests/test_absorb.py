"""absorb end to end on a tiny model: overlap of generation and training, crash + rerun, run directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_absorb import PAIRS, run

from lift_jax.models.weight_files import read_safetensors

SCRIPT = Path(__file__).parent / "fake_absorb.py"


def _adapter(run_dir: Path) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in read_safetensors(run_dir / "adapter" / "adapter_model.safetensors")}


def test_training_starts_before_generation_finishes_and_run_dir_is_complete(tiny_checkpoints, tmp_path):
    out = tmp_path / "run"
    summary = run(tiny_checkpoints["llama3"], out, delay_s=0.15)
    marks = summary["timing"]
    assert marks["first_step_started"] < marks["generation_done"]  # epoch 1 overlapped generation
    ttft = summary["ttft"]
    assert ttft["overlapped_s"] == marks["first_answer_token"] > marks["adapter_written"]
    # without the overlap, training would have started only at generation_done
    saved = ttft["sequential_estimate_s"] - ttft["overlapped_s"]
    assert abs(saved - (marks["generation_done"] - marks["first_step_started"])) < 0.01
    assert summary["generation"] == {"sentences": len(PAIRS), "pairs": len(PAIRS)}
    assert summary["steps"] == 3 * len(PAIRS) // 4
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, summary["steps"] + 1))
    per_epoch = len(PAIRS) // 4
    assert [m["epoch"] for m in metrics] == [e for e in (1, 2, 3) for _ in range(per_epoch)]
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "config.json", "timing.json"):
        assert (out / name).exists(), name


def test_kill_during_training_then_rerun_gives_the_uninterrupted_adapter(tiny_checkpoints, tmp_path):
    checkpoint = tiny_checkpoints["qwen3"]
    reference = tmp_path / "a" / "run"
    reference.parent.mkdir()
    subprocess.run([sys.executable, str(SCRIPT), str(checkpoint), str(reference)], check=True, capture_output=True)

    crashed = tmp_path / "b" / "run"
    crashed.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(checkpoint), str(crashed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        steps = [int(p.name) for p in (crashed / "checkpoints").glob("*") if p.name.isdigit()]
        if steps and max(steps) >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (crashed / "adapter").exists()
    subprocess.run([sys.executable, str(SCRIPT), str(checkpoint), str(crashed)], check=True, capture_output=True)

    want, got = _adapter(reference), _adapter(crashed)
    assert want.keys() == got.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg=key)
    losses = [json.loads(x)["loss"] for x in (reference / "metrics.jsonl").read_text().splitlines()]
    resumed = {
        json.loads(x)["step"]: json.loads(x)["loss"] for x in (crashed / "metrics.jsonl").read_text().splitlines()
    }
    assert [resumed[s] for s in range(1, len(losses) + 1)] == losses


def test_cosine_schedule_runs_from_the_cli_and_metrics_log_every_n_steps(tiny_checkpoints, tmp_path, monkeypatch):
    import math

    from fake_absorb import tiny_config

    import lift_jax.absorb as absorb_module

    cfg = tiny_config(tiny_checkpoints["llama3"], tmp_path / "run")
    Path(cfg.document).write_text("Item one weighs four grams. " * 8)  # 224 one-byte tokens: 7 chunks of 32
    model = Path(cfg.model_path).resolve()
    monkeypatch.chdir(model.parent)  # the model given relative to the working directory, as users type it
    absorb_module.main([
        f"--config.model_path={model.name}", f"--config.document={cfg.document}",
        f"--config.output_dir={cfg.output_dir}", "--config.method=raw", "--config.raw_chunk_tokens=32",
        "--config.lora.rank=4", "--config.train.max_length=64", "--config.train.epochs=3",
        "--config.train.batch_size=4",
        "--config.train.lr=0.001", "--config.train.schedule=cosine", "--config.train.log_every=4",
        "--config.train.checkpoint_every=5", "--config.mesh.data=1", "--config.ask.measure_first_token=false",
    ])
    total = 3 * math.ceil(7 / 4)  # estimated before training: exact for raw chunks
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 5, 6]  # every 4th, the checkpointed 5th and the last (6th)
    for m in metrics:
        assert m["lr"] == pytest.approx(0.001 * 0.5 * (1 + math.cos(math.pi * (m["step"] - 1) / total)), rel=1e-5)
    assert json.loads((tmp_path / "run" / "timing.json").read_text())["steps"] == total
    # the run names its base model absolutely: ask, the exporters and PEFT find it from any directory
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model_path"] == str(model)
    adapter_config = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(model)


@pytest.fixture(scope="module")
def lift_raw_run(tiny_checkpoints, tmp_path_factory) -> tuple[Path, dict]:
    """A `lift+raw` run: the fake producer's pairs plus the document's raw chunks."""
    from fake_absorb import fake_producer, tiny_config

    import lift_jax.absorbing.job as absorb_module

    out = tmp_path_factory.mktemp("lift_raw") / "run"
    cfg = tiny_config(tiny_checkpoints["llama3"], out)
    cfg.method, cfg.raw_chunk_tokens = "lift+raw", 16
    real = absorb_module.start_qa_producer
    absorb_module.start_qa_producer = fake_producer(0.0)
    try:
        summary = absorb_module.absorb(cfg, progress=False)
    finally:
        absorb_module.start_qa_producer = real
    return out, summary


def test_lift_plus_raw_trains_on_the_pairs_and_the_raw_chunks(lift_raw_run):
    out, summary = lift_raw_run
    document = (out / "document.txt").read_text()
    chunks = -(-len(document.encode()) // 16)  # one token per byte: 56 bytes, 4 chunks of 16 tokens
    per_epoch = -(-(len(PAIRS) + chunks) // 4)  # 7 steps of 4 rows; the pairs alone would be 6
    assert summary["steps"] == 3 * per_epoch == 21
    assert summary["generation"] == {"sentences": len(PAIRS), "pairs": len(PAIRS)}
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [e for e in (1, 2, 3) for _ in range(per_epoch)]


def test_ask_with_truncated_context_puts_the_middle_truncated_document_in_the_prompt(
    lift_raw_run, monkeypatch, capsys
):
    import lift_jax.answering as answering
    import lift_jax.ask as ask_module

    out, _ = lift_raw_run
    head, tail = "The head of the document. ", " And this is how it ends."
    (out / "document.txt").write_text(head + "MIDDLE " * 200 + tail)  # far beyond the tiny model's 256 tokens
    prompts: list[str] = []
    real = answering.generate_ids

    def spy(module, rest, params, stops, pad, **kwargs):
        prompts.extend(list(kwargs.get("prefix", [])) + list(r) for r in rest)
        return real(module, rest, params, stops, pad, **kwargs)

    monkeypatch.setattr(answering, "generate_ids", spy)
    for extra in (["--base"], []):  # truncated ICL, LIFT + truncated ICL
        ask_module.main(["--run", str(out), *extra, "--context", "truncated", "--question", "How does it end?",
                         "--max-new-tokens", "4"])
    ask_module.main(["--run", str(out), "--question", "How does it end?", "--max-new-tokens", "4"])
    assert len(capsys.readouterr().out.splitlines()) == 3  # one answer line each
    from tiny_models import tiny_tokenizer

    texts = [tiny_tokenizer().decode(p) for p in prompts]
    for text, ids in zip(texts[:2], prompts[:2], strict=True):
        assert len(ids) <= 256 - 4  # the window minus the answer
        assert "Document:\nThe head of the document." in text and "And this is how it ends.\n\nQuestion:" in text
        assert "MIDDLE MIDDLE" in text and text.count("MIDDLE") < 200  # the middle was cut, both ends kept
    assert "Document:" not in texts[2] and "How does it end?" in texts[2]


def _shared_generator_setup(checkpoint: Path, out: Path, fsdp: int):
    """A tiny run config whose local QA generator is its target model, that model with an adapter, its trainer
    (weights sharded over `fsdp` devices)."""
    import jax
    from fake_absorb import tiny_config

    from lift_jax.absorbing.job import prepare_adapter
    from lift_jax.models import load
    from lift_jax.sharding import make_mesh
    from lift_jax.train import LoRATrainer, OptimizerConfig

    cfg = tiny_config(checkpoint, out)
    cfg.generator.kind, cfg.generator.model = "local", str(checkpoint)
    mesh = make_mesh(1, fsdp, 1)
    loaded = load(checkpoint, mesh=mesh)
    prepare_adapter(loaded, cfg)
    trainer = LoRATrainer(loaded.module, OptimizerConfig(lr=1e-3), mesh=mesh)
    trainer.lora = jax.tree.map(lambda x: x + 0.05, trainer.lora)  # an adapter that changes what the model writes
    return cfg, loaded, trainer


@pytest.mark.parametrize("fsdp", [1, 2])
def test_a_generator_on_the_trainers_base_arrays_writes_what_a_loaded_copy_writes(tiny_checkpoints, tmp_path, fsdp):
    from flax import nnx

    from lift_jax.absorbing.job import base_model_completer
    from lift_jax.sampling import make_local_completer, module_completer
    from lift_jax.special_tokens import stop_token_ids

    checkpoint = tiny_checkpoints["llama3"]
    cfg, loaded, trainer = _shared_generator_setup(checkpoint, tmp_path / "run", fsdp)
    assert len(trainer.base.to_pure_dict()["layers"][0]["self_attn"]["q_proj"]["base"]["kernel"].devices()) == fsdp
    stops = stop_token_ids(loaded.tokenizer, loaded.spec.eos_token_ids)
    shared = base_model_completer(loaded, trainer, cfg, stops)
    prompts, settings = ["Item one weighs", "Where does item two"], (24, 0.0, 1.0, 0)
    want = make_local_completer(str(checkpoint))(prompts, *settings, prefix="Facts: ")
    assert shared(prompts, *settings, prefix="Facts: ") == want
    with_adapter = nnx.merge(trainer.graphdef, trainer.lora, trainer.rngs, trainer.base)
    assert module_completer(with_adapter, loaded.tokenizer, stops)(prompts, *settings, prefix="Facts: ") != want
    cfg.generator.model = str(checkpoint / ".." / checkpoint.name)  # the same folder, spelled differently
    assert base_model_completer(loaded, trainer, cfg, stops) is not None
    cfg.generator.model = str(checkpoint) + "-other"
    assert base_model_completer(loaded, trainer, cfg, stops) is None  # another model: the generator loads it
    cfg.generator.model, cfg.generator.kind = str(checkpoint), "openai"
    assert base_model_completer(loaded, trainer, cfg, stops) is None


def test_absorb_with_the_target_model_as_local_generator_loads_it_once(tiny_checkpoints, tmp_path, monkeypatch):
    from fake_absorb import tiny_config
    from test_synth_pipeline import fake_completer

    import lift_jax.absorbing.job as job
    import lift_jax.sampling

    def no_second_load(*args):
        raise AssertionError("the generator loaded a second copy of the model")

    samplers = []

    def recording_completer(module, tokenizer, stops):
        samplers.append(module)
        return fake_completer([])

    monkeypatch.setattr(lift_jax.sampling, "make_local_completer", no_second_load)
    monkeypatch.setattr(job, "module_completer", recording_completer)
    checkpoint = tiny_checkpoints["llama3"]
    cfg = tiny_config(checkpoint, tmp_path / "run")
    cfg.generator.kind, cfg.generator.model = "local", str(checkpoint)
    (tmp_path / "document.txt").write_text(
        "The old brass lantern hangs above the north door of the mill. The miller keeps twelve grey geese "
        "in the walled yard behind the granary."
    )
    prepared = job.prepare(cfg)
    summary = job.absorb_document(prepared.loaded, prepared.mesh, cfg, Path(cfg.document).read_text(),
                                  progress=False)
    assert summary["generation"]["sentences"] == 2 and summary["generation"]["pairs"] > 0
    (module,) = samplers
    generator_q = module.layers[0].self_attn.q_proj
    trained_q = prepared.loaded.module.layers[0].self_attn.q_proj
    assert generator_q.merged and not trained_q.merged  # the generator runs with the adapter off
    pointer = lambda layer: layer.base.kernel.get_value().addressable_data(0).unsafe_buffer_pointer()  # noqa: E731
    assert pointer(generator_q) == pointer(trained_q)  # on the same weights, not a copy
