"""The generator thread of absorb: runs the synthetic-QA stage and feeds its pairs into the training buffer.

Pairs enter the buffer in the order they enter the QA cache (cached sentences first, in cache order; then new
ones in completion order), so a resumed run rebuilds exactly the epoch-1 order of the run it continues.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import ml_collections

from lift_jax.data import ItemBuffer, TrainItem
from lift_jax.errors import LiftError

if TYPE_CHECKING:
    from lift_jax.synth.generators import LocalCompleter

SentencePairs = Iterable[tuple[int, list[tuple[str, str]]]]  # (sentence index, [(question, answer), ...])
ItemsFor = Callable[[int, list[tuple[str, str]]], list[TrainItem]]  # one sentence's pairs -> training items


def qa_items(index: int, pairs: list[tuple[str, str]]) -> list[TrainItem]:
    """The paper's LIFT items: each generated pair as it is."""
    return [TrainItem(answer=a, question=q, order=(index, j)) for j, (q, a) in enumerate(pairs)]


class QAProducer(threading.Thread):
    """Thread that drains `results()` into `buffer` (through `items_for`, e.g. the lift+cd teacher stage) and
    closes it (with the error, if one occurs)."""

    def __init__(self, results: Callable[[], SentencePairs], buffer: ItemBuffer, items_for: ItemsFor = qa_items):
        super().__init__(name="lift-qa-producer", daemon=True)
        self._results, self._buffer, self._items_for = results, buffer, items_for
        self.summary: dict[str, Any] = {}
        self._began = time.perf_counter()
        self._first_pair: float | None = None
        self._done: float | None = None

    def run(self) -> None:
        sentences = pairs = 0
        try:
            for index, qa in self._results():
                sentences += 1
                if qa and self._first_pair is None:
                    self._first_pair = time.perf_counter()
                pairs += len(qa)
                self._buffer.extend(self._items_for(index, qa))
        except BaseException as e:  # the trainer must learn of any failure instead of waiting forever
            self._buffer.close(error=e)
            if isinstance(e, LiftError):
                return  # the trainer reports it as one error line; a thread traceback would only repeat it
            raise
        finally:
            self._done = time.perf_counter()
        self.summary.update({"sentences": sentences, "pairs": pairs})
        self._buffer.close()

    def marks(self, start: float) -> dict[str, float]:
        """Generation timing marks relative to `start` (perf_counter seconds)."""
        out = {}
        if self._first_pair is not None:
            out["first_pair"] = round(self._first_pair - start, 3)
        if self._done is not None:
            out["generation_done"] = round(self._done - start, 3)
        return out


def check_generator(cfg: ml_collections.ConfigDict) -> None:
    """Fail fast (GeneratorUnavailable / ValueError) if the run's generator cannot work, before anything is written.

    Server-backed generators are asked once whether they answer; a local model is checked when it loads.
    """
    from lift_jax.synth.config import check_generator_config
    from lift_jax.synth.generators import make_generator

    check_generator_config(cfg.generator)
    if cfg.generator.kind != "openai":
        return

    async def probe() -> None:
        generator = make_generator(cfg.generator, cfg.dtype, cfg.seed)
        try:
            await generator.start()
        finally:
            await generator.aclose()

    asyncio.run(probe())


def start_qa_producer(
    cfg: ml_collections.ConfigDict, document: str, cache_dir: Path, buffer: ItemBuffer, progress: bool = True,
    items_for: ItemsFor = qa_items, completer: LocalCompleter | None = None,
) -> QAProducer:
    """Start the generator thread for this process's share of `document` (sentence i belongs to process
    i % process_count, which writes its own QA cache shard) with the run's generator settings; `items_for`
    turns each sentence's pairs into training items; a local generator runs on `completer` if given."""
    from lift_jax.synth.pipeline import document_pairs

    def results() -> SentencePairs:
        return document_pairs(cfg, document, cache_dir, progress=progress, shard_index=jax.process_index(),
                              shard_count=jax.process_count(), completer=completer)

    producer = QAProducer(results, buffer, items_for)
    producer.start()
    return producer
