"""Document -> per-sentence QA results, cached sentences first, the rest in completion order.

`generate_document` is a plain iterator that can run in any thread: generation runs on a private asyncio loop
in a worker thread, writes each finished sentence to the cache, and hands it over through a queue, so a slow
consumer never stalls requests and a slow request never stalls the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_collections
from tqdm.auto import tqdm

from lift_jax.synth.cache import QACache, sentence_key
from lift_jax.synth.config import check_generator_config
from lift_jax.synth.generators import (
    Generation,
    GenerationFailed,
    Generator,
    GeneratorSampling,
    GeneratorUnavailable,
    LocalCompleter,
    make_generator,
)
from lift_jax.synth.parse import QAPair, clean_pairs, parse_lines, parse_questions, parse_reply, usable_pair
from lift_jax.synth.prompts import PromptTemplate, load_prompt
from lift_jax.synth.split import SentenceTask, sentence_tasks

log = logging.getLogger(__name__)
_DONE = object()


@dataclasses.dataclass(frozen=True)
class PlannedSentence:
    """A sentence task of this process's shard and its cache key."""

    task: SentenceTask
    key: str


@dataclasses.dataclass(frozen=True)
class SentenceResult:
    """One sentence's outcome: `ok` with pairs, or `failed` with the reason (retried on the next run)."""

    index: int
    key: str
    status: str
    pairs: tuple[QAPair, ...] = ()
    cached: bool = False
    error: str | None = None
    attempts: int = 0


@dataclasses.dataclass
class GenerationSummary:
    """Counts over one document (this process's shard of it)."""

    sentences: int = 0
    cached: int = 0
    ok: int = 0
    failed: int = 0
    retried: int = 0  # sentences that needed more than one request
    requests: int = 0
    pairs_generated: int = 0
    pairs_reused: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        return dataclasses.asdict(self)


def generation_settings(document: str, cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """What the manifest records about a run: the document hash and the generator settings."""
    template = load_prompt(cfg.prompt, cfg.kind)
    return {
        "document_sha256": hashlib.sha256(document.encode("utf-8")).hexdigest(),
        "prompt_sha256": hashlib.sha256(template.identity().encode("utf-8")).hexdigest(),
        **{k: v for k, v in cfg.to_dict().items() if k != "api_key_env"},
        "prompt": template.name,
    }


def plan_document(
    document: str, cfg: ml_collections.ConfigDict, shard_index: int = 0, shard_count: int = 1
) -> list[PlannedSentence]:
    """The sentences of `document` that belong to this shard (sentence i goes to shard i % count), keyed by
    sentence, context, prompt template, generator model, m and samples per sentence: not by the document or
    the sentence's index, so the same sentence after the same context in another document (a NIAH cell with
    the needle elsewhere) reuses the pairs a shared cache already holds."""
    check_generator_config(cfg)
    template = load_prompt(cfg.prompt, cfg.kind)
    samples = GeneratorSampling.from_config(cfg).samples_for(template)
    tasks = sentence_tasks(document, cfg.min_sentence_chars, cfg.max_sentence_chars, cfg.max_context_chars)
    return [
        PlannedSentence(
            t,
            sentence_key(
                sentence=t.sentence, context=t.context, prompt=template.identity(), model=cfg.model,
                m=cfg.qa_per_sentence, samples=samples,
            ),
        )
        for t in tasks
        if t.index % shard_count == shard_index
    ]


def extract_pairs(
    generation: Generation, template: PromptTemplate, task: SentenceTask, m: int
) -> list[QAPair]:
    """Up to `m` distinct pairs from all samples; completion (small-model) pairs must also be usable. A
    questions-only template gives pairs with empty answers."""
    if template.questions_only:
        questions = [q for text in generation.texts for q in parse_questions(text, m)]
        return [QAPair(q, "") for q in dict.fromkeys(questions)][:m]
    pairs = [p for text in generation.texts for p in parse_reply(text, m, template.completion)]
    if template.completion:
        examples = parse_lines(template.user, stop_at_text=False)
        pairs = [p for p in pairs if usable_pair(p, task.sentence, examples)]
    return clean_pairs(pairs, m)


class _Worker(threading.Thread):
    """Generates `todo` on its own event loop; puts results, then _DONE or an exception, on `out`."""

    def __init__(self, todo: list[PlannedSentence], cfg: ml_collections.ConfigDict, cache: QACache,
                 settings: dict[str, Any], generator: Generator | None, dtype: str, seed: int,
                 summary: GenerationSummary, progress: bool, out: queue.Queue):
        super().__init__(name="lift-qa-generation", daemon=True)
        self.todo, self.cfg, self.cache, self.settings = todo, cfg, cache, settings
        self.generator, self.dtype, self.seed = generator, dtype, seed
        self.summary, self.progress, self.out = summary, progress, out
        self.bar: tqdm | None = None
        self.began = time.perf_counter()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None

    def run(self) -> None:
        try:
            self._task = self._loop.create_task(self._main())
            self._loop.run_until_complete(self._task)
        except BaseException as e:  # noqa: BLE001 - handed to the consuming thread
            self.out.put(e)
        else:
            self.out.put(_DONE)
        finally:
            self._loop.close()

    def stop(self) -> None:
        """Cancel the generation (from any thread); already cached sentences stay cached."""
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            self._loop.call_soon_threadsafe(lambda: self._task is not None and self._task.cancel())

    async def _main(self) -> None:
        gen = self.generator
        if gen is None:
            gen = await asyncio.to_thread(make_generator, self.cfg, self.dtype, self.seed)
        try:
            gen.expect([planned.task for planned in self.todo])
            await gen.start()
            self.cache.open_writer()
            s = self.summary
            self.bar = tqdm(total=s.sentences, initial=s.cached, desc="QA generation", unit="sentence",
                            disable=not self.progress)
            try:
                self.cache.write_manifest(self.settings, {"status": "running"})
                async with asyncio.TaskGroup() as group:
                    for planned in self.todo:
                        group.create_task(self._one(gen, planned))
            except BaseExceptionGroup as eg:
                raise eg.exceptions[0] from None
            finally:
                self.summary.seconds = round(time.perf_counter() - self.began, 3)
                self.cache.write_manifest(self.settings, {**self.summary.as_dict(), "generator": gen.stats()})
                self.cache.close()
                self.bar.close()
        finally:
            await gen.aclose()

    async def _one(self, gen: Generator, planned: PlannedSentence) -> None:
        task, key = planned.task, planned.key
        attempts, error, pairs = 0, "", []
        for extra in range(self.cfg.empty_retries + 1):
            try:
                generation = await gen.generate(task, attempt=self.cache.failures(key) + extra)
            except GenerationFailed as e:
                attempts += e.attempts
                error = str(e)
                break
            except GeneratorUnavailable as e:
                raise GeneratorUnavailable(f"sentence {task.index} ({task.sentence[:60]!r}): {e}") from e
            attempts += generation.attempts
            pairs = extract_pairs(generation, gen.template, task, self.cfg.qa_per_sentence)
            if pairs:
                break
            last = generation.texts[0] if generation.texts else ""
            error = f"no usable QA pair in {extra + 1} reply(s); last reply: {last[:160]!r}"
        if pairs:
            self.cache.append_ok(key, task.index, pairs)
            result = SentenceResult(task.index, key, "ok", tuple(pairs), attempts=attempts)
        else:
            self.cache.append_failed(key, task.index, error)
            result = SentenceResult(task.index, key, "failed", error=error, attempts=attempts)
        s = self.summary
        s.requests += attempts
        s.retried += attempts > 1
        s.ok += result.status == "ok"
        s.failed += result.status == "failed"
        s.pairs_generated += len(result.pairs)
        if self.bar is not None:
            self.bar.set_postfix(pairs=s.pairs_generated + s.pairs_reused, failed=s.failed, refresh=False)
            self.bar.update(1)
        self.out.put(result)


def generate_document(
    document: str,
    cfg: ml_collections.ConfigDict,
    cache: QACache,
    *,
    generator: Generator | None = None,
    dtype: str = "float32",
    seed: int = 0,
    shard_index: int = 0,
    shard_count: int = 1,
    progress: bool = True,
    summary: GenerationSummary | None = None,
) -> Iterator[SentenceResult]:
    """Yield a SentenceResult per sentence of this shard: cached ones first (cache order, no request), then
    the rest as they complete. `cfg` is the generator config; without `generator`, one is made from it (a
    local model is loaded only if something is left to generate). A sentence that fails after retries is
    recorded and yielded as failed; GeneratorUnavailable (raised before anything is written) stops the
    document.
    Pass `summary` to read the counts afterwards."""
    began = time.perf_counter()
    summary = summary if summary is not None else GenerationSummary()
    # A sentence repeated after the same context has one key: it is generated and yielded once, on the first
    # run and on a resumed one alike.
    planned = {p.key: p for p in reversed(plan_document(document, cfg, shard_index, shard_count))}
    plan = sorted(planned.values(), key=lambda p: p.task.index)
    cached = [
        SentenceResult(planned[c.key].task.index, c.key, "ok", c.pairs, cached=True)
        for c in cache.completed()
        if c.key in planned
    ]
    todo = [p for p in plan if cache.lookup(p.key) is None]
    summary.sentences, summary.cached = len(plan), len(cached)
    summary.ok = len(cached)
    summary.pairs_reused = sum(len(r.pairs) for r in cached)
    out: queue.Queue = queue.Queue()
    worker = None
    if todo:
        settings = generation_settings(document, cfg)
        worker = _Worker(todo, cfg, cache, settings, generator, dtype, seed, summary, progress, out)
        worker.start()
    try:
        yield from cached
        while worker is not None:
            item = out.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if worker is not None and worker.is_alive():
            worker.stop()
            worker.join()
        summary.seconds = round(time.perf_counter() - began, 3)
        log.info("QA generation: %s", summary.as_dict())


def document_pairs(
    cfg: ml_collections.ConfigDict,
    document: str,
    cache_dir: Path,
    progress: bool = True,
    shard_index: int = 0,
    shard_count: int = 1,
    completer: LocalCompleter | None = None,
) -> Iterator[tuple[int, list[QAPair]]]:
    """absorb's view of the stage for the run config `cfg`: (sentence index, pairs) per sentence, cached ones
    first; a failed sentence yields no pairs. A local generator runs on `completer` when one is given."""
    cache = QACache(cache_dir, shard_index, shard_count)
    generator = None if completer is None else make_generator(cfg.generator, cfg.dtype, cfg.seed, completer)
    results = generate_document(
        document, cfg.generator, cache, generator=generator, dtype=cfg.dtype, seed=cfg.seed, progress=progress,
        shard_index=shard_index, shard_count=shard_count,
    )
    for result in results:
        yield result.index, list(result.pairs)
