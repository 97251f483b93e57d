"""The main job: a document goes in, a LIFTed LoRA adapter comes out (orbax checkpoints + PEFT export),
trained while the generator is still writing QA pairs. A rerun into the same output directory resumes: cached
sentences are not regenerated and training continues from the last checkpoint.

With several processes (`mesh.num_processes` > 1 or JAX_NUM_PROCESSES) every process runs the same job: each
generates its share of the sentences into its own QA cache shard and feeds its rows of each global batch;
process 0 alone writes the adapter, metrics.jsonl and timing.json and shows progress bars, the others log to
process_<i>.log.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import jax
import ml_collections
from jax.sharding import Mesh

from lift_jax.absorbing.settings import (
    estimate_total_steps,
    local_rows,
    lora_config,
    optimizer_config,
    prompt_format,
)
from lift_jax.absorbing.timing import Timing, time_to_first_token
from lift_jax.absorbing.training import resume, train
from lift_jax.batching import length_buckets
from lift_jax.checkpoint import TrainCheckpointer
from lift_jax.cli import UsageError
from lift_jax.config import GENERATING_METHODS, validate_method, with_absolute_model_path, with_method_defaults
from lift_jax.data import BatchStream, ItemBuffer, TrainItem
from lift_jax.distill.run import holdout_report, start_cd_producer, teacher_for
from lift_jax.distill.targets import distill_example
from lift_jax.distributed import initialize
from lift_jax.documents import raw_chunks, read_document
from lift_jax.errors import ConfigError
from lift_jax.logfile import logging_to
from lift_jax.lora import apply_lora, lora_modules, reset_lora, unmerge_lora
from lift_jax.models import LoadedModel, load
from lift_jax.peft_io import export_peft_adapter
from lift_jax.producer import check_generator, start_qa_producer
from lift_jax.prompting import PromptFormat, encode_example, encode_text
from lift_jax.runio import MetricsLog, RunDir, write_json_atomic
from lift_jax.sampling import module_completer
from lift_jax.sharding import make_mesh
from lift_jax.special_tokens import pad_token_id, stop_token_ids
from lift_jax.synth.generators import LocalCompleter
from lift_jax.train import LoRATrainer, row_multiple

log = logging.getLogger("lift_jax.absorb")  # the job's log channel (lift_jax.distill.run writes to it too)


class Prepared(NamedTuple):
    """A base model loaded onto the mesh of the run's devices: what absorbing documents needs."""

    loaded: LoadedModel
    mesh: Mesh


def prepare(cfg: ml_collections.ConfigDict) -> Prepared:
    """Join the run's processes (jax.distributed, before any JAX computation), build the mesh over every
    process's devices and load `cfg.model_path` onto it; once per process, then absorb any number of documents."""
    initialize(cfg)
    return _load_on_mesh(cfg)


def _load_on_mesh(cfg: ml_collections.ConfigDict) -> Prepared:
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    if jax.process_count() > 1 and mesh.devices.size != jax.device_count():
        raise UsageError(
            f"the mesh uses {mesh.devices.size} of the {jax.device_count()} devices of {jax.process_count()} "
            "processes; a multi-process mesh must span all of them (set one mesh axis to -1)"
        )
    return Prepared(load(cfg.model_path, dtype=cfg.dtype, mesh=mesh), mesh)


def check_inputs(cfg: ml_collections.ConfigDict) -> str:
    """Validate the run's settings and inputs before anything is written; returns the document's text."""
    validate_method(cfg)
    if not cfg.document:
        raise UsageError("no document given; pass --config.document=PATH")
    if not cfg.output_dir:
        raise UsageError("no output directory given; pass --config.output_dir=DIR")
    document = read_document(Path(cfg.document))
    if cfg.method in GENERATING_METHODS:
        check_generator(cfg)
    if cfg.train.log_every < 1:
        raise ConfigError(f"train.log_every must be at least 1 (metrics every N steps), got {cfg.train.log_every}")
    return document


def absorb(cfg: ml_collections.ConfigDict, progress: bool = True) -> dict[str, Any]:
    """Run generation + LoRA training for `cfg`; returns the run summary (also written to timing.json)."""
    timing = Timing()
    initialize(cfg)  # before any JAX computation: the mesh spans every process's devices
    document = check_inputs(cfg)
    loaded, mesh = _load_on_mesh(cfg)
    timing.mark("model_loaded")
    return absorb_document(loaded, mesh, cfg, document, progress=progress, timing=timing)


def prepare_adapter(loaded: LoadedModel, cfg: ml_collections.ConfigDict) -> None:
    """Give `loaded.module` a fresh LoRA adapter: wrap its linears the first time, re-initialise them after."""
    existing = lora_modules(loaded.module)
    if existing:
        if existing[0][1].rank != cfg.lora.rank:
            raise ConfigError(
                f"the model already carries rank-{existing[0][1].rank} adapters; cfg.lora.rank={cfg.lora.rank} "
                "needs a freshly loaded model"
            )
        unmerge_lora(loaded.module)
        reset_lora(loaded.module, seed=cfg.seed)
    else:
        apply_lora(loaded.module, lora_config(cfg), seed=cfg.seed)


def absorb_document(
    loaded: LoadedModel,
    mesh: Mesh,
    cfg: ml_collections.ConfigDict,
    document: str,
    *,
    progress: bool = True,
    timing: Timing | None = None,
) -> dict[str, Any]:
    """Absorb `document` into a fresh adapter on the already-loaded model (in place) and write `cfg.output_dir`.

    The base weights are reused as they are, so an evaluation loop absorbs many documents with one load; the
    adapter left in `loaded.module` is this document's (unmerged).
    """
    cfg = with_absolute_model_path(with_method_defaults(cfg))
    run = RunDir(Path(cfg.output_dir)).create()
    index = jax.process_index()
    if index == 0:
        write_json_atomic(run.config, cfg.to_dict())
        run.document_copy.write_text(document)
        return _absorb_into(loaded, mesh, cfg, document, run, progress, timing or Timing())
    # A secondary process logs to its own file only, for this document only (an evaluation absorbs many).
    with logging_to(run.process_log(index), exclusive=True):
        return _absorb_into(loaded, mesh, cfg, document, run, False, timing or Timing())


def generator_is_target(cfg: ml_collections.ConfigDict) -> bool:
    """Whether the run's QA generator is its target model sampled in this process: a local generator whose
    `generator.model` names `model_path` (the same string or the same file or folder), and one process (with
    several, the weights span all of them and a sampler call would need every process in it)."""
    g = cfg.generator
    if g.kind != "local" or jax.process_count() > 1:
        return False
    model, target = str(g.model), str(cfg.model_path)
    return model == target or (Path(model).exists() and Path(model).resolve() == Path(target).resolve())


def base_model_completer(
    loaded: LoadedModel, trainer: LoRATrainer, cfg: ml_collections.ConfigDict, stops: tuple[int, ...]
) -> LocalCompleter | None:
    """When `generator_is_target(cfg)`, a completer over the trainer's base arrays with the adapter off, so the
    generator loads no second copy of the weights; None otherwise (the generator loads its own model, or is a
    server)."""
    if not generator_is_target(cfg):
        return None
    return module_completer(trainer.base_model, loaded.require_tokenizer("a local QA generator"), stops)


def _encoder(tokenizer: Any, fmt: PromptFormat, stops: tuple[int, ...], ce_weight: float = 0.0):
    def encode(item: TrainItem):
        if item.teacher is not None:
            return distill_example(tokenizer, item.question, item.teacher, fmt, ce_weight)
        if item.question is None:
            return encode_text(tokenizer, item.answer)
        return encode_example(tokenizer, item.question, item.answer, fmt, stops)

    return encode


def _log_metrics(record: dict[str, Any]) -> None:
    log.info("metrics %s", json.dumps(record))


def _absorb_into(
    loaded: LoadedModel,
    mesh: Mesh,
    cfg: ml_collections.ConfigDict,
    document: str,
    run: RunDir,
    progress: bool,
    timing: Timing,
) -> dict[str, Any]:
    index, count = jax.process_index(), jax.process_count()
    primary = index == 0
    rows = local_rows(cfg.train.batch_size, count)
    tokenizer = loaded.require_tokenizer("absorbing a document")
    stops = stop_token_ids(tokenizer, loaded.spec.eos_token_ids)
    buffer = ItemBuffer()
    if cfg.method in ("raw", "lift+raw"):
        chunks = raw_chunks(tokenizer, document, cfg.raw_chunk_tokens)
        buffer.extend([TrainItem(answer=c, order=(-1, i)) for i, c in enumerate(chunks) if i % count == index])
    if cfg.method == "lift+cd" and count > 1:
        raise UsageError("method lift+cd runs in one process; use mesh.num_processes=1")
    if cfg.method == "raw":
        buffer.close()
    # A generator that is the target model runs on the trainer's base arrays, so it starts after the trainer;
    # a server or another model starts now, overlapping the adapter's set-up.
    producer = distiller = None
    pairs_only = cfg.method in ("lift", "lift+raw")
    if pairs_only and not generator_is_target(cfg):
        producer = start_qa_producer(cfg, document, run.qa_cache, buffer, progress=progress)

    prepare_adapter(loaded, cfg)
    total_steps = estimate_total_steps(cfg, document, tokenizer)
    trainer = LoRATrainer(loaded.module, optimizer_config(cfg, total_steps=total_steps), mesh=mesh)
    pad_id = pad_token_id(tokenizer, stops)
    completer = base_model_completer(loaded, trainer, cfg, stops)
    if pairs_only and producer is None:
        producer = start_qa_producer(cfg, document, run.qa_cache, buffer, progress=progress, completer=completer)
    elif cfg.method == "lift+cd":  # the teacher shares the trainer's base arrays too
        teacher = teacher_for(loaded, trainer, cfg, prompt_format(cfg), stops, pad_id)
        producer, distiller = start_cd_producer(cfg, document, teacher, run.teacher_cache, run.qa_cache, buffer,
                                                progress=progress, completer=completer)
    stream = BatchStream(
        buffer,
        _encoder(tokenizer, prompt_format(cfg), stops, cfg.cd.ce_weight),
        epochs=cfg.train.epochs,
        rows=rows,
        accum=cfg.train.grad_accum,
        buckets=length_buckets(cfg.train.max_length, min(cfg.train.min_bucket, cfg.train.max_length)),
        pad_id=pad_id,
        seed=cfg.seed,
        pack=True,
        row_multiple=row_multiple(mesh, count),
    )
    checkpointer = TrainCheckpointer(run.checkpoints)
    resume(checkpointer, trainer, stream)
    metrics_log = MetricsLog(run.metrics) if primary else None
    record = metrics_log.write if metrics_log is not None else _log_metrics
    summary = train(cfg, trainer, stream, checkpointer, record, timing, progress)
    if producer is not None:
        producer.join()
        summary["generation"] = producer.summary
        timing.marks.update(producer.marks(timing.start))
    model = trainer.sync_model()
    if distiller is not None:
        distiller.close()
        summary["cd"] = holdout_report(loaded, prompt_format(cfg), distiller, cfg)
        record({"step": trainer.step, **{k: v for k, v in summary["cd"].items() if k != "held_out_answers"}})
    if metrics_log is not None:
        metrics_log.close()

    if primary:
        export_peft_adapter(model, lora_config(cfg), run.adapter, base_model_name=str(cfg.model_path))
    checkpointer.close()
    timing.mark("adapter_written")
    # Decoding one token would need every process in the Answerer's computations; only one process times it.
    if cfg.ask.measure_first_token and count == 1:
        summary["ttft"] = time_to_first_token(loaded, cfg, timing)
    summary["timing"] = timing.marks
    if primary:
        write_json_atomic(run.timing, summary)
    else:
        log.info("done: %s", json.dumps(summary))
    return summary
