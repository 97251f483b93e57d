"""LLM judge of answers (the paper's GPT-4 score, appendix C) through an OpenAI-compatible server.

Temperature 0, retried like the generator, and cached on disk (JSONL) by a hash of (question, ground truth,
prediction, judge model): a rerun asks only what it has not asked. A reply that is neither True nor False is
recorded as `unparsed` (verdict None) instead of failing the run; a request that fails after retries is
returned as `failed` and asked again next time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import ml_collections

from lift_jax.durable import append_jsonl, open_append, read_jsonl
from lift_jax.errors import LiftError
from lift_jax.synth.cache import is_terminal, sentence_key
from lift_jax.synth.client import ClientSettings, OpenAIClient, RequestFailed

JUDGE_PROMPT = (
    "Given one question, there is a groundtruth and a predict_answer. Please decide whether they are the "
    "same or not in semantic. Please only output 'True' or 'False' .\n"
    "Question: {question}\n"
    "groundtruth = {groundtruth}\n"
    "predict_answer = {prediction}"
)
_MARKUP = re.compile(r"[*_`'\"#>\[\]()]")
_VERDICT_WORDS = ("true", "false")
_LABELS = (["answer"], ["verdict"], ["output"], ["judgment"], ["judgement"], ["final", "answer"])


class JudgeUnavailable(LiftError, RuntimeError):
    """The judge server cannot be used (unreachable, or the key, URL or model is rejected)."""


def judge_config() -> ml_collections.ConfigDict:
    """Judge settings (same field names as the generator's connection settings)."""
    j = ml_collections.ConfigDict()
    j.base_url = "http://127.0.0.1:8000/v1"
    j.model = "gpt-4"
    j.api_key_env = "OPENAI_API_KEY"
    j.concurrency = 64
    j.timeout_s = 60.0
    j.max_retries = 4
    j.backoff_s = 0.5
    j.backoff_max_s = 30.0
    j.max_new_tokens = 16
    return j


@dataclasses.dataclass(frozen=True)
class JudgeItem:
    """One answer to judge against its ground truth."""

    question: str
    groundtruth: str
    prediction: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """`status` is ok (verdict True/False), unparsed (verdict None, reply kept) or failed (error kept)."""

    verdict: bool | None
    status: str
    reply: str = ""
    cached: bool = False
    error: str | None = None


def parse_verdict(text: str) -> bool | None:
    """True/False from a judge reply ('True', 'true.', '**False**', 'Answer: True', "'False'", ...): a first
    line that is just the verdict (optionally labelled) decides; otherwise the reply must contain exactly one
    of the two words. None when neither holds."""
    cleaned = _MARKUP.sub(" ", text).lower()
    first = re.findall(r"[a-z]+", cleaned.strip().split("\n", 1)[0])
    if first and first[-1] in _VERDICT_WORDS and (len(first) == 1 or first[:-1] in _LABELS):
        return first[-1] == "true"
    found = {w for w in re.findall(r"[a-z]+", cleaned) if w in _VERDICT_WORDS}
    return found.pop() == "true" if len(found) == 1 else None


def judge_key(item: JudgeItem, model: str) -> str:
    """Cache key of `item` judged by `model`."""
    return sentence_key(model=model, **dataclasses.asdict(item))


def _load(path: Path) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    if path.exists():
        for _, rec in read_jsonl(path):
            if isinstance(rec, dict) and "key" in rec:  # else a line a crash damaged
                records[rec["key"]] = rec
    return records


def _from_record(rec: dict[str, Any]) -> Verdict:
    return Verdict(rec["verdict"], rec["status"], rec.get("reply", ""), cached=True)


async def _ask(
    client: OpenAIClient, cfg: ml_collections.ConfigDict, f: BinaryIO, key: str, item: JudgeItem
) -> Verdict:
    messages = [{"role": "user", "content": JUDGE_PROMPT.format(**dataclasses.asdict(item))}]
    try:
        reply = await client.chat(messages, max_tokens=cfg.max_new_tokens, temperature=0.0)
    except RequestFailed as e:
        if e.fatal:
            raise JudgeUnavailable(str(e)) from None
        return Verdict(None, "failed", error=str(e))
    text = reply.texts[0]
    verdict = parse_verdict(text)
    status = "unparsed" if verdict is None else "ok"
    record = {"key": key, **dataclasses.asdict(item), "model": cfg.model}
    append_jsonl(f, [{**record, "verdict": verdict, "status": status, "reply": text}])
    return Verdict(verdict, status, text)


async def _judge_new(
    todo: dict[str, JudgeItem], cfg: ml_collections.ConfigDict, path: Path
) -> dict[str, Verdict]:
    async with OpenAIClient(ClientSettings.from_config(cfg)) as client:
        try:
            await client.check()
        except RequestFailed as e:
            raise JudgeUnavailable(f"judge server {cfg.base_url} is not usable: {e}") from None
        with open_append(path, complete=is_terminal) as f:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = {k: group.create_task(_ask(client, cfg, f, k, it)) for k, it in todo.items()}
            except BaseExceptionGroup as eg:
                raise eg.exceptions[0] from None
    return {k: t.result() for k, t in tasks.items()}


def judge(
    items: Sequence[JudgeItem], cfg: ml_collections.ConfigDict, cache_path: Path | str
) -> list[Verdict]:
    """Verdicts for `items` in order (cached ones without a request). Runs its own event loop, so call it
    from a thread without a running loop. Raises JudgeUnavailable if the server cannot be used at all."""
    path = Path(cache_path)
    cached = _load(path)
    keys = [judge_key(item, cfg.model) for item in items]
    todo = {k: item for k, item in zip(keys, items, strict=True) if k not in cached}
    fresh = asyncio.run(_judge_new(todo, cfg, path)) if todo else {}
    return [fresh[k] if k in fresh else _from_record(cached[k]) for k in keys]
