"""The evaluation loop shared by the NIAH, SQuAD and LooGLE harnesses.

The base model is loaded once. Per document, each absorb method of lift_jax.config.METHODS (`lift`, `raw`,
`lift+raw`, ...) gets a fresh adapter through `absorb_document` (run directory
`output_dir/runs/<doc>/<method>`, QA cache `output_dir/qa_cache` and `shared_cache_dir` = output_dir shared by
all runs), and its questions are answered without the document; `<method>+icl` answers with that adapter and
the middle-truncated document (ask.context_tokens); `icl` answers with the base model (adapters swapped out)
and the truncated document, `base` with the base model and no document. Every answer is appended to
`output_dir/predictions.jsonl` as soon as it exists, so a rerun skips (document, method) pairs whose questions
are all answered and retries errored ones (with the adapter a finished absorb exported, or by resuming an
interrupted absorb). A question whose document marks its answer passage gets `in_window`, `position` and
`window_edges` (lift_jax.eval.window) in every method's record. Offline metrics always (split by in_window
when there is one); the LLM judge when `judge.enabled`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from lift_jax.absorbing import Timing, absorb_document, prepare, prompt_format
from lift_jax.answering import Answerer, ask_sampling
from lift_jax.cli import enable_compilation_cache, parse_config_args
from lift_jax.config import with_method_defaults
from lift_jax.eval.adapters import base_model
from lift_jax.eval.benchmark import BenchmarkFormatError, Document, QAItem
from lift_jax.eval.config import (
    BASE_MODEL_METHODS,
    absorb_method,
    check_eval_config,
    generates_qa,
    harness_usage,
    reads_document,
)
from lift_jax.eval.metrics import Scorer
from lift_jax.eval.qa_share import coverage, link_shared_cache
from lift_jax.eval.records import SUMMARY_MD, PredictionStore, is_error
from lift_jax.eval.report import write_report
from lift_jax.eval.window import Placement, place_questions
from lift_jax.judge import JudgeItem, judge
from lift_jax.logfile import log_to_stderr, logging_to
from lift_jax.models import LoadedModel
from lift_jax.peft_io import import_peft_adapter
from lift_jax.producer import check_generator
from lift_jax.runio import RunDir
from lift_jax.synth.cache import CacheError
from lift_jax.synth.generators import GeneratorUnavailable

log = logging.getLogger("lift_jax.eval")
FATAL = (GeneratorUnavailable, CacheError, MemoryError)  # stop the run instead of recording an error
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass
class Benchmark:
    """What a harness plugs into the loop: its documents, scorers and extra record fields / outputs."""

    name: str
    title: str
    metrics: Mapping[str, Scorer]
    load_documents: Callable[[], list[Document]]
    record_fields: Callable[[Document, QAItem], dict[str, Any]] = lambda doc, item: {}
    finish: Callable[[Path, list[dict[str, Any]]], list[Path]] | None = None  # e.g. heatmaps


def run_dir_name(doc_id: str) -> str:
    """A file-system-safe folder name for a document id (a short hash keeps altered ids distinct)."""
    slug = _UNSAFE.sub("_", doc_id).strip("._") or "doc"
    if slug != doc_id:
        slug += "-" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8]
    return slug


def groundtruth(answers: Sequence[str]) -> str:
    """The gold answers as the judge's one ground truth (distinct answers joined with '; ')."""
    return "; ".join(dict.fromkeys(str(a) for a in answers))


class Evaluator:
    """One evaluation run over `benchmark` with the harness config `cfg`."""

    def __init__(self, cfg: ml_collections.ConfigDict, benchmark: Benchmark, progress: bool | None = None):
        self.methods = check_eval_config(cfg)
        self.cfg, self.benchmark = cfg, benchmark
        self.output_dir = Path(cfg.output_dir)
        self.store = PredictionStore(self.output_dir)
        self.progress = cfg.eval.progress if progress is None else progress
        self._loaded: LoadedModel | None = None
        self._mesh: Any = None
        self._answerer: Answerer | None = None
        self._placements: dict[str, dict[str, Placement]] = {}  # doc id -> question id -> placement

    # -- model -------------------------------------------------------------------------------------------------
    def _model(self) -> tuple[LoadedModel, Answerer]:
        if self._loaded is None:
            cfg = self.cfg
            began = time.perf_counter()
            self._loaded, self._mesh = prepare(cfg)
            params = ask_sampling(cfg, seed=cfg.seed)
            self._answerer = Answerer(self._loaded, prompt_format(cfg), params, cfg.ask.context_tokens)
            log.info("base model %s loaded in %.1f s", cfg.model_path, time.perf_counter() - began)
        assert self._answerer is not None
        return self._loaded, self._answerer

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self, docs: list[Document] | None = None) -> dict[str, dict[str, Any]]:
        """Evaluate every pending (document, method) of `docs` (default: the benchmark's); write predictions and
        the summary; return the summary."""
        docs = self.benchmark.load_documents() if docs is None else docs
        if self.cfg.max_documents:
            docs = docs[: self.cfg.max_documents]
        seen: set[str] = set()
        for doc in docs:
            if doc.id in seen:
                raise BenchmarkFormatError(self.cfg.data, "documents", f"two documents share the id {doc.id!r}")
            seen.add(doc.id)
        done = self.store.done_keys()
        work = [(doc, todo) for doc in docs if (todo := self._pending(doc, done))]
        skipped = len(docs) - len(work)
        log.info("%s: %d documents, %d with work left (%d done), methods %s", self.benchmark.name, len(docs),
                 len(work), skipped, ",".join(self.methods))
        if any(generates_qa(m) for _, todo in work for m in map(absorb_method, todo) if m is not None):
            check_generator(self.cfg)  # fail fast: an unreachable server stops the run before any absorb
        for number, (doc, todo) in enumerate(work, start=1):
            self._document(doc, todo, f"[{number}/{len(work)}] {doc.id}")
        return self.finish()

    def _pending(self, doc: Document, done: set[tuple[str, str]]) -> dict[str, list[QAItem]]:
        todo = {m: [q for q in doc.questions if (q.id, m) not in done] for m in self.methods}
        return {m: qs for m, qs in todo.items() if qs}

    def _document(self, doc: Document, todo: dict[str, list[QAItem]], label: str) -> None:
        groups: dict[str | None, list[str]] = {}
        for method in todo:
            groups.setdefault(absorb_method(method), []).append(method)
        for run_method, methods in groups.items():
            if run_method is None:
                for method in methods:
                    self._answer(doc, method, todo[method], {}, label)
                continue
            try:
                stats = self._absorb(doc, run_method, label)
            except FATAL:
                raise
            except Exception as e:  # noqa: BLE001 - recorded; the (document, method) is retried next run
                log.exception("%s %s: absorb failed", label, run_method)
                for method in methods:
                    self._record_all(doc, method, todo[method], {}, f"absorb failed: {type(e).__name__}: {e}")
                continue
            for method in methods:
                self._answer(doc, method, todo[method], stats, label)

    def _run_dir(self, doc: Document, method: str) -> Path:
        return self.output_dir / "runs" / run_dir_name(doc.id) / method.replace("+", "_")

    def _absorb(self, doc: Document, method: str, label: str) -> dict[str, Any]:
        """A fresh adapter for `doc` in the model: absorbed now, or the one a finished earlier run exported."""
        loaded, _ = self._model()
        run_dir = self._run_dir(doc, method)
        finished = RunDir(run_dir)
        if finished.timing.exists() and finished.adapter.is_dir():  # timing.json is written last
            import_peft_adapter(loaded.module, finished.adapter)
            info = json.loads(finished.timing.read_text())
            log.info("%s %s: reusing the adapter of the finished run in %s", label, method, run_dir)
            return {"absorb_s": info.get("timing", {}).get("adapter_written"), "steps": info.get("steps"),
                    "adapter_reused": True}
        run_cfg = copy.deepcopy(self.cfg)
        run_cfg.method, run_cfg.output_dir = method, str(run_dir)
        run_cfg = with_method_defaults(run_cfg)
        if self.cfg.eval.shared_qa_cache and not run_cfg.shared_cache_dir:
            run_cfg.shared_cache_dir = str(self.output_dir)
        before = None
        if generates_qa(method):
            shared = self.output_dir / "qa_cache"
            if self.cfg.eval.shared_qa_cache and link_shared_cache(run_dir, shared):
                cache_dir = shared
            else:
                cache_dir = run_dir / "qa_cache"
            before = coverage(run_cfg.generator, doc.text, cache_dir)
        if method == "lift+cd" and self.cfg.eval.shared_qa_cache:  # teacher outputs shared like the QA pairs
            link_shared_cache(run_dir, self.output_dir / "teacher_cache", "teacher_cache")
        began = time.perf_counter()
        summary = absorb_document(loaded, self._mesh, run_cfg, doc.text, progress=self.progress, timing=Timing())
        stats: dict[str, Any] = {"absorb_s": round(time.perf_counter() - began, 2), "steps": summary["steps"]}
        message = f"{label} {method}: absorbed in {stats['absorb_s']:.1f} s, {stats['steps']} steps"
        if before is not None:
            pairs = int(summary.get("generation", {}).get("pairs", 0))
            stats["pairs_reused"] = min(before.cached_pairs, pairs)
            stats["pairs_generated"] = pairs - stats["pairs_reused"]
            message += (f"; QA pairs generated {stats['pairs_generated']}, reused {stats['pairs_reused']} "
                        f"({before.cached_sentences}/{before.sentences} sentences cached)")
        teacher = summary.get("cd")
        if teacher is not None:  # lift+cd: how many teacher answers the shared cache already held
            stats["teacher_computed"] = int(teacher["teacher_computed"])
            stats["teacher_reused"] = int(teacher["teacher_cached"])
            message += f"; teacher answers computed {stats['teacher_computed']}, reused {stats['teacher_reused']}"
        log.info(message)
        if not self.cfg.eval.keep_checkpoints:  # the exported adapter is all a rerun needs
            shutil.rmtree(finished.checkpoints, ignore_errors=True)
        return stats

    def _answer(self, doc: Document, method: str, items: list[QAItem], stats: dict[str, Any], label: str) -> bool:
        """Answer `items` with `method`, record each answer (or the error); True when none failed."""
        loaded, answerer = self._model()
        context = doc.text if reads_document(method) else None
        size = self.cfg.eval.answer_batch_size
        results: list[tuple[str, str | None]] = []
        began = time.perf_counter()
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            try:
                if method in BASE_MODEL_METHODS:
                    with base_model(loaded.module):
                        answers = answerer.answer([q.question for q in batch], context)
                else:
                    answers = answerer.answer([q.question for q in batch], context)
                results += [(a, None) for a in answers]
            except FATAL:
                raise
            except Exception as e:  # noqa: BLE001 - recorded; retried next run
                log.exception("%s %s: answering failed", label, method)
                results += [("", f"answer failed: {type(e).__name__}: {e}")] * len(batch)
        timing = {**stats, "answer_s": round(time.perf_counter() - began, 2)}
        for item, (prediction, error) in zip(items, results, strict=True):
            self.store.append(self._record(doc, item, method, prediction, timing, error))
        failed = sum(error is not None for _, error in results)
        log.info("%s %s: %d answers in %.1f s%s", label, method, len(items), timing["answer_s"],
                 f", {failed} failed" if failed else "")
        return not failed

    def _record_all(self, doc: Document, method: str, items: list[QAItem], timing: dict, error: str) -> None:
        for item in items:
            self.store.append(self._record(doc, item, method, "", timing, error))

    def _record(
        self, doc: Document, item: QAItem, method: str, prediction: str, timing: dict[str, Any], error: str | None
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": item.id,
            "doc_id": doc.id,
            "method": method,
            "question": item.question,
            "prediction": prediction,
            "answers": list(item.answers),
        }
        if item.category is not None:
            record["category"] = item.category
        record.update(self.benchmark.record_fields(doc, item))
        placement = self._placement(doc).get(item.id)
        if placement is not None:
            record.update(placement.fields())
        record.update(timing)
        if error is not None:
            record["error"] = error
        return record

    def _placement(self, doc: Document) -> dict[str, Placement]:
        """Where each question's answer passage lies relative to the truncated-ICL window (the same for every
        method: it is the window `icl` and `<method>+icl` see)."""
        if doc.id not in self._placements:
            spans = {q.id: (q.question, doc.passages[q.passage]) for q in doc.questions if q.passage is not None}
            self._placements[doc.id] = place_questions(self._model()[1], doc.text, spans) if spans else {}
        return self._placements[doc.id]

    # -- judge and summary -------------------------------------------------------------------------------------
    def finish(self) -> dict[str, dict[str, Any]]:
        """Judge what is unjudged (if enabled), then write summary.json / summary.md and the extra outputs."""
        summary = self._report()
        if self.cfg.judge.enabled:
            self._judge()  # JudgeUnavailable propagates; the offline summary is already written
            summary = self._report()
        return summary

    def _report(self) -> dict[str, dict[str, Any]]:
        records = self.store.records()
        summary = write_report(self.output_dir, records, self.benchmark.metrics, self.benchmark.title,
                               self.cfg.ask.context_tokens)
        if self.benchmark.finish is not None and records:
            for path in self.benchmark.finish(self.output_dir, records):
                log.info("wrote %s", path)
        log.info("wrote %s and %s", self.output_dir / "summary.json", self.output_dir / "summary.md")
        return summary

    def _judge(self) -> None:
        todo = [r for r in self.store.records() if not is_error(r) and "judge" not in r]
        if not todo:
            return
        items = [JudgeItem(r["question"], groundtruth(r["answers"]), str(r["prediction"])) for r in todo]
        verdicts = judge(items, self.cfg.judge, self.output_dir / "judge_cache.jsonl")
        failed = 0
        for record, verdict in zip(todo, verdicts, strict=True):
            if verdict.status == "failed":
                failed += 1  # asked again next run
                continue
            self.store.append({**record, "judge": verdict.verdict, "judge_status": verdict.status})
        log.info("judge: %d verdicts, %d requests failed (retried next run)", len(todo) - failed, failed)


def run_benchmark(
    cfg: ml_collections.ConfigDict, benchmark: Benchmark, progress: bool | None = None
) -> dict[str, dict[str, Any]]:
    """Run the harness for `benchmark`, logging to `output_dir/eval.log` too; returns the summary. Bad settings
    or a malformed benchmark file raise before anything is written."""
    evaluator = Evaluator(cfg, benchmark, progress)
    docs = benchmark.load_documents()
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with logging_to(output_dir / "eval.log"):
        return evaluator.run(docs)


def run_from_args(
    argv: Sequence[str],
    default_config: str,
    usage: str,
    make_benchmark: Callable[[ml_collections.ConfigDict], Benchmark],
) -> str:
    """What a benchmark's command line does: parse `--config NAME` / `--config.<field>=VALUE` / `--help` (which
    prints `usage` and the harness fields, exit 0) against `default_config`, turn on the persistent compilation
    cache and progress on stderr, run the benchmark; returns summary.md's text. Bad input raises a LiftError."""
    cfg = parse_config_args(argv, default_config, usage + harness_usage())
    enable_compilation_cache()
    log_to_stderr()
    run_benchmark(cfg, make_benchmark(cfg))
    return (Path(cfg.output_dir) / SUMMARY_MD).read_text()
