"""`python -m lift_jax.absorb --config <name>.py --config.document=PATH --config.output_dir=DIR`

A document goes in; a LIFTed LoRA adapter comes out (orbax checkpoints + PEFT export), trained while the
generator is still writing QA pairs. Rerunning the same command after a crash resumes: cached sentences are
not regenerated and training continues from the last checkpoint.

With `mesh.num_processes` > 1 (or JAX_NUM_PROCESSES; scripts/absorb_multiprocess.sh starts local ones) every
process runs this same command: each generates its share of the sentences into its own QA cache shard and
feeds its rows of each global batch; process 0 alone writes the adapter, metrics.jsonl and timing.json and
shows progress bars, the others log to process_<i>.log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
from jax.sharding import Mesh
from tqdm.auto import tqdm

from lift_jax.ask import Answerer
from lift_jax.batching import length_buckets
from lift_jax.checkpoint import TrainCheckpointer
from lift_jax.cli import UsageError, enable_compilation_cache, fail, parse_config_args
from lift_jax.config import GENERATING_METHODS, validate_method, with_method_defaults
from lift_jax.data import BatchStream, ItemBuffer, TrainItem
from lift_jax.distill.run import holdout_report, start_cd_producer, teacher_for
from lift_jax.distill.targets import distill_example
from lift_jax.distributed import all_processes, initialize
from lift_jax.documents import raw_chunks, read_document
from lift_jax.errors import ConfigError, LiftError
from lift_jax.logfile import logging_to
from lift_jax.lora import LoRAConfig, apply_lora, lora_modules, reset_lora, unmerge_lora
from lift_jax.models import LoadedModel, load
from lift_jax.models.checkpoint_io import CheckpointError
from lift_jax.peft_io import export_peft_adapter
from lift_jax.producer import check_generator, start_qa_producer
from lift_jax.prompting import PromptFormat, encode_example, encode_text
from lift_jax.runio import MetricsLog, RunDir, write_json_atomic
from lift_jax.sampling import SamplingParams, stop_token_ids
from lift_jax.sharding import make_mesh
from lift_jax.synth.split import split_sentences
from lift_jax.train import LoRATrainer, OptimizerConfig, row_multiple

USAGE = __doc__
log = logging.getLogger("lift_jax.absorb")  # not __name__: run as __main__ by `python -m`
FIRST_TOKEN_PROBE = "What is the document about?"  # any question: only the latency of its first token is kept


@dataclasses.dataclass
class Timing:
    """Wall-clock marks of one absorb run (seconds since the document was read)."""

    start: float = dataclasses.field(default_factory=time.perf_counter)
    marks: dict[str, float] = dataclasses.field(default_factory=dict)

    def mark(self, name: str) -> None:
        """Record `name` at the current time (first occurrence wins)."""
        self.marks.setdefault(name, round(time.perf_counter() - self.start, 3))


def prompt_format(cfg: ml_collections.ConfigDict) -> PromptFormat:
    """The prompt format shared by training and asking."""
    return PromptFormat(use_chat_template=cfg.use_chat_template, system=cfg.system_prompt or None)


def lora_config(cfg: ml_collections.ConfigDict) -> LoRAConfig:
    """LoRAConfig from the `lora` config group."""
    targets = cfg.lora.targets
    targets = targets if isinstance(targets, str) else tuple(targets)
    return LoRAConfig(rank=cfg.lora.rank, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout, targets=targets)


def optimizer_config(cfg: ml_collections.ConfigDict, total_steps: int) -> OptimizerConfig:
    """OptimizerConfig from the `train` config group."""
    t = cfg.train
    return OptimizerConfig(
        lr=t.lr,
        schedule=t.schedule,
        warmup_steps=t.warmup_steps,
        total_steps=total_steps,
        weight_decay=t.weight_decay,
        clip_norm=t.clip_norm,
    )


def estimate_total_steps(cfg: ml_collections.ConfigDict, document: str, tokenizer: Any) -> int:
    """The optimizer steps of the run, known before training starts (the linear and cosine schedules decay
    over them).

    Items: for `lift` (and `lift+raw`) every sentence of the document as the generator splits it times
    `generator.qa_per_sentence` pairs (`lift+cd`: `cd.max_questions_per_sentence` questions), an upper bound (a
    sentence may yield fewer, or none), so training never runs past the schedule's end; for `raw` (and
    `lift+raw`) the document's `raw_chunk_tokens` chunks, exact. Epoch 1: each process streams its own share
    (sentence / chunk i goes to process i % N), so all take ceil(largest share / (its rows x grad_accum)) steps;
    later epochs: ceil(items / (batch_size x grad_accum)) each. With one process this is the step count of a run
    whose sentences all yield m items.
    """
    count = jax.process_count()
    sentences = chunks = m = 0
    if cfg.method in GENERATING_METHODS:
        g = cfg.generator
        sentences = len(split_sentences(document, g.min_sentence_chars, g.max_sentence_chars))
        m = cfg.cd.max_questions_per_sentence if cfg.method == "lift+cd" else g.qa_per_sentence
    if cfg.method in ("raw", "lift+raw"):
        chunks = len(raw_chunks(tokenizer, document, cfg.raw_chunk_tokens))
    share = -(-sentences // count) * m + -(-chunks // count)
    first = -(-share // (local_rows(cfg.train.batch_size, count) * cfg.train.grad_accum))
    later = -(-(sentences * m + chunks) // (cfg.train.batch_size * cfg.train.grad_accum))
    return first + (cfg.train.epochs - 1) * later


def _encoder(tokenizer: Any, fmt: PromptFormat, stops: tuple[int, ...], ce_weight: float = 0.0):
    def encode(item: TrainItem):
        if item.teacher is not None:
            return distill_example(tokenizer, item.question, item.teacher, fmt, ce_weight)
        if item.question is None:
            return encode_text(tokenizer, item.answer)
        return encode_example(tokenizer, item.question, item.answer, fmt, stops)

    return encode


def _check_inputs(cfg: ml_collections.ConfigDict) -> str:
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
    initialize(cfg)  # before any JAX computation: the mesh below spans every process's devices
    document = _check_inputs(cfg)
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    if jax.process_count() > 1 and mesh.devices.size != jax.device_count():
        raise UsageError(
            f"the mesh uses {mesh.devices.size} of the {jax.device_count()} devices of {jax.process_count()} "
            "processes; a multi-process mesh must span all of them (set one mesh axis to -1)"
        )
    loaded = load(cfg.model_path, dtype=cfg.dtype, mesh=mesh)
    timing.mark("model_loaded")
    return absorb_document(loaded, mesh, cfg, document, progress=progress, timing=timing)


def prepare_adapter(loaded: LoadedModel, cfg: ml_collections.ConfigDict) -> None:
    """Give `loaded.module` a fresh LoRA adapter: wrap its linears the first time, re-initialise them after."""
    existing = lora_modules(loaded.module)
    if existing:
        if existing[0][1].rank != cfg.lora.rank:
            raise ValueError(
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
    cfg = with_method_defaults(cfg)
    run = RunDir(Path(cfg.output_dir)).create()
    index = jax.process_index()
    if index == 0:
        write_json_atomic(run.config, cfg.to_dict())
        run.document_copy.write_text(document)
        return _absorb_into(loaded, mesh, cfg, document, run, progress, timing or Timing())
    # A secondary process logs to its own file only, for this document only (an evaluation absorbs many).
    with logging_to(run.process_log(index), exclusive=True):
        return _absorb_into(loaded, mesh, cfg, document, run, False, timing or Timing())


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
    producer = distiller = None
    if cfg.method in ("lift", "lift+raw"):
        producer = start_qa_producer(cfg, document, run.qa_cache, buffer, progress=progress)
    elif cfg.method != "lift+cd":
        buffer.close()
    elif count > 1:
        raise UsageError("method lift+cd runs in one process; use mesh.num_processes=1")

    prepare_adapter(loaded, cfg)
    total_steps = estimate_total_steps(cfg, document, tokenizer)
    trainer = LoRATrainer(loaded.module, optimizer_config(cfg, total_steps=total_steps), mesh=mesh)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    if cfg.method == "lift+cd":  # the teacher shares the trainer's base arrays, so it starts after it
        teacher = teacher_for(loaded, trainer, cfg, prompt_format(cfg), stops, pad_id)
        producer, distiller = start_cd_producer(cfg, document, teacher, run.teacher_cache, run.qa_cache, buffer,
                                                progress=progress)
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
    if checkpointer.latest_step() is not None:
        meta = checkpointer.restore(trainer)
        stream.restore(own_data_state(meta["data"], checkpointer.latest_step()))
    metrics_log = MetricsLog(run.metrics) if primary else None
    record = metrics_log.write if metrics_log is not None else _log_metrics
    summary = _train(cfg, trainer, stream, checkpointer, record, timing, progress)
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


def local_rows(batch_size: int, process_count: int) -> int:
    """This process's rows of each global micro-batch of `batch_size` rows."""
    if batch_size % process_count:
        raise UsageError(
            f"train.batch_size={batch_size} rows do not split over {process_count} processes; "
            f"use a multiple of {process_count}"
        )
    return batch_size // process_count


def _log_metrics(record: dict[str, Any]) -> None:
    log.info("metrics %s", json.dumps(record))


def _data_states(state: dict[str, int]) -> list[dict[str, int]]:
    """Every process's data-iterator state, in process order (collective)."""
    return [{"epoch": int(e), "position": int(p)} for e, p in all_processes([state["epoch"], state["position"]])]


def own_data_state(states: list[dict[str, Any]] | dict[str, Any], step: int | None) -> dict[str, Any]:
    """This process's entry of a checkpoint's per-process data states (a single dict: a checkpoint written
    before runs had several processes, i.e. by one process)."""
    if isinstance(states, dict):
        states = [states]
    if len(states) != jax.process_count():
        raise CheckpointError(
            f"checkpoint {step} was written by {len(states)} process(es), this run has {jax.process_count()}; "
            f"resume with {len(states)} processes or use a new output_dir"
        )
    return states[jax.process_index()]


def time_to_first_token(loaded: LoadedModel, cfg: ml_collections.ConfigDict, timing: Timing) -> dict[str, float]:
    """Decode one answer token with the fresh adapter and return the time-to-first-token breakdown (seconds).

    `overlapped_s`: document in -> first answer token out, as this run did it. `sequential_estimate_s`: the same
    had training started only after generation ended (generation time + training time + first token); an
    estimate, since overlapped training shared the machine with the generator.
    """
    began = time.perf_counter()
    Answerer(loaded, prompt_format(cfg), SamplingParams(max_new_tokens=1)).answer([FIRST_TOKEN_PROBE])
    first_token = time.perf_counter() - began
    timing.mark("first_answer_token")
    m = timing.marks
    training = m["training_done"] - m.get("first_step_started", m["training_done"])
    generation = m.get("generation_done", m.get("model_loaded", 0.0))
    return {
        "overlapped_s": m["first_answer_token"],
        "sequential_estimate_s": round(generation + training + (m["adapter_written"] - m["training_done"])
                                       + first_token, 3),
        "first_token_decode_s": round(first_token, 3),
    }


def _train(
    cfg: ml_collections.ConfigDict,
    trainer: LoRATrainer,
    stream: BatchStream,
    checkpointer: TrainCheckpointer,
    record_metrics: Callable[[dict[str, Any]], None],
    timing: Timing,
    progress: bool,
) -> dict[str, Any]:
    bar = tqdm(desc="training", unit="step", disable=not progress, initial=trainer.step)
    pending: tuple[int, int, dict, float] | None = None  # metrics are read one step late: no host sync per step
    compute_s = 0.0
    tokens = 0

    def flush(p: tuple[int, int, dict, float], logged: bool = False) -> None:
        nonlocal compute_s, tokens
        step, epoch, metrics, t0 = p
        host = jax.device_get(metrics)
        elapsed = time.perf_counter() - t0
        compute_s += elapsed
        tokens += int(host["tokens"])
        record = {"step": step, "epoch": epoch, "loss": float(host["loss"]), "tokens": int(host["tokens"]),
                  "grad_norm": float(host["grad_norm"]), "lr": float(trainer.learning_rate(step - 1)),
                  "time": round(time.perf_counter() - timing.start, 3)}
        if logged or step % cfg.train.log_every == 0:
            record_metrics(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", epoch=epoch, tok_s=f"{tokens / max(compute_s, 1e-9):.0f}")

    for batch, state in stream:
        timing.mark("first_step_started")
        t0 = time.perf_counter()
        metrics = trainer.train_step(batch)
        if pending is not None:
            flush(pending)
        pending = (trainer.step, state["epoch"], metrics, t0)  # the state after a batch is still in its epoch
        bar.update(1)
        if trainer.step % cfg.train.checkpoint_every == 0:
            flush(pending, logged=True)  # every checkpointed step is in metrics.jsonl before the checkpoint exists
            pending = None
            checkpointer.save(trainer, {"data": _data_states(state)})
    if pending is not None:
        flush(pending, logged=True)  # the last step is checkpointed below
    bar.close()
    if checkpointer.latest_step() != trainer.step:
        checkpointer.save(trainer, {"data": _data_states(stream.state())})
    timing.mark("training_done")
    return {"steps": trainer.step, "train_compute_s": round(compute_s, 3), "loss_tokens": tokens}


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    enable_compilation_cache()
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config_args(argv, "smollm2_135m", USAGE)
        summary = absorb(cfg)
    except LiftError as e:
        fail(str(e))
    print(f"adapter written to {Path(cfg.output_dir) / 'adapter'}; {summary['steps']} steps")


if __name__ == "__main__":
    main()
