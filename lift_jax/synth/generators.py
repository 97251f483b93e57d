"""QA generators behind one async interface: an OpenAI-compatible server, an in-process vLLM engine, or a
local model through lift_jax's own batched sampler.

A generator turns a SentenceTask into raw reply texts (one per sample); parsing and filtering happen in the
pipeline. `GenerationFailed` fails one sentence; `GeneratorUnavailable` stops the whole document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import ml_collections

from lift_jax.errors import ConfigError, LiftError
from lift_jax.synth.client import ClientSettings, OpenAIClient, RequestFailed
from lift_jax.synth.config import KINDS
from lift_jax.synth.prompts import PromptTemplate, load_prompt
from lift_jax.synth.split import SentenceTask

COMPLETION_STOP = ["\n\n", "\nText:"]  # a few-shot completion ends with its example
T = TypeVar("T")
R = TypeVar("R")


class GeneratorUnavailable(LiftError, RuntimeError):
    """The generator cannot be used at all (server unreachable, key or model rejected, engine missing)."""


class GenerationFailed(LiftError, RuntimeError):
    """Generation for one sentence failed for good (after retries)."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


@dataclasses.dataclass(frozen=True)
class Generation:
    """Raw reply texts for one sentence (one per sample) and the requests it took."""

    texts: list[str]
    attempts: int = 1


@dataclasses.dataclass(frozen=True)
class GeneratorSampling:
    """How many QA pairs the generator is asked for and how it samples them (decoding of the trained model is
    lift_jax.sampling)."""

    m: int = 10
    samples: int = 1  # samples per sentence with a completion prompt (a chat prompt asks for m at once)
    max_new_tokens: int = 1024
    completion_max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95

    @classmethod
    def from_config(cls, cfg: ml_collections.ConfigDict) -> GeneratorSampling:
        """The QA generator's sampling settings from the generator config."""
        return cls(cfg.qa_per_sentence, cfg.samples_per_sentence, cfg.max_new_tokens,
                   cfg.completion_max_new_tokens, cfg.temperature, cfg.top_p)

    def samples_for(self, template: PromptTemplate) -> int:
        """Samples per sentence for `template`."""
        return self.samples if template.completion else 1

    def max_tokens_for(self, template: PromptTemplate) -> int:
        """Token budget of one reply for `template`."""
        return self.completion_max_new_tokens if template.completion else self.max_new_tokens

    def lines_per_sample(self, template: PromptTemplate) -> int:
        """For completion prompts, the `Question`/`Answer` lines one sample needs (0: no line limit)."""
        if not template.completion:
            return 0
        lines_per_pair = 1 if template.questions_only else 2
        return lines_per_pair * -(-self.m // self.samples)


class Generator(Protocol):
    """What the pipeline drives: `expect()` and `start()` once (start may raise GeneratorUnavailable),
    `generate()` per task."""

    template: PromptTemplate
    sampling: GeneratorSampling

    def expect(self, tasks: Sequence[SentenceTask]) -> None: ...

    async def start(self) -> None: ...

    async def generate(self, task: SentenceTask, attempt: int = 0) -> Generation: ...

    async def aclose(self) -> None: ...

    def stats(self) -> dict[str, int]: ...


class LocalCompleter(Protocol):
    """lift_jax's batched sampler: continuations of `prefix + prompt` for each prompt (the shared `prefix` is
    computed once), a row stopping after `max_lines` line breaks (0: no limit), in a layout that also holds
    `floor_prompts` (calls given the same ones compile once)."""

    def __call__(
        self,
        prompts: list[str],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        max_lines: int = 0,
        prefix: str = "",
        floor_prompts: Sequence[str] = (),
    ) -> list[str]: ...


class OpenAIGenerator:
    """Chat prompts to /chat/completions, completion prompts to /completions, through OpenAIClient."""

    def __init__(self, settings: ClientSettings, template: PromptTemplate, sampling: GeneratorSampling, seed: int = 0):
        self.settings, self.template, self.sampling, self._seed = settings, template, sampling, seed
        self._client: OpenAIClient | None = None

    def expect(self, tasks: Sequence[SentenceTask]) -> None:
        """Nothing to prepare: the server batches requests itself."""

    async def start(self) -> None:
        """Open the client in the running loop and check that the server answers."""
        self._client = OpenAIClient(self.settings)
        try:
            await self._client.check()
        except RequestFailed as e:
            url = self.settings.base_url
            raise GeneratorUnavailable(f"generator server {url} is not usable: {e}") from None

    async def generate(self, task: SentenceTask, attempt: int = 0) -> Generation:
        """One request for `task` (retried inside the client on transient failures), seeded by the task and
        the attempt so a run can be reproduced where the server honours seeds."""
        if self._client is None:
            raise GeneratorUnavailable("OpenAIGenerator.start() was not called")
        s, t = self.sampling, self.template
        seed = _batch_seed(self._seed, [(task, attempt)])
        try:
            if t.completion:
                reply = await self._client.complete(
                    t.text(task, s.m),
                    max_tokens=s.max_tokens_for(t),
                    temperature=s.temperature,
                    top_p=s.top_p,
                    n=s.samples_for(t),
                    seed=seed,
                    stop=COMPLETION_STOP,
                )
            else:
                reply = await self._client.chat(
                    t.messages(task, s.m),
                    max_tokens=s.max_tokens_for(t),
                    temperature=s.temperature,
                    top_p=s.top_p,
                    seed=seed,
                )
        except RequestFailed as e:
            if e.fatal:
                raise GeneratorUnavailable(str(e)) from None
            raise GenerationFailed(str(e), e.attempts) from None
        return Generation(reply.texts, reply.attempts)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()

    def stats(self) -> dict[str, int]:
        """Request counters of the client."""
        return dataclasses.asdict(self._client.stats) if self._client else {}


class _Batcher(Generic[T, R]):
    """Collects items submitted concurrently and runs them through a blocking batch function in a thread."""

    def __init__(self, run: Callable[[list[T]], list[R]], batch_size: int):
        self._run, self._size = run, max(1, batch_size)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, item: T) -> R:
        """Queue `item` and wait for its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let items submitted in the same loop iteration join the first batch
        while self._pending:
            batch, self._pending = self._pending[: self._size], self._pending[self._size :]
            self.batches += 1
            try:
                results = await asyncio.to_thread(self._run, [item for item, _ in batch])
            except Exception as e:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def aclose(self) -> None:
        """Stop collecting (a batch already running in its thread finishes on its own)."""
        if self._worker is not None:
            self._worker.cancel()


def _batch_seed(seed: int, items: list[tuple[SentenceTask, int]]) -> int:
    """A 31-bit seed derived from the run seed and the (sentence, attempt) items of a request or batch."""
    blob = json.dumps([seed, [(task.index, attempt) for task, attempt in items]]).encode()
    return zlib.crc32(blob) & 0x7FFFFFFF


class LocalGenerator:
    """A local model through a batched completion function: several sentences per call, `samples` rows
    each; the template's fixed opening (instructions and examples) is passed once as the shared prefix."""

    def __init__(
        self,
        complete: LocalCompleter,
        template: PromptTemplate,
        sampling: GeneratorSampling,
        batch_size: int,
        seed: int = 0,
    ):
        self.template, self.sampling, self._complete, self._seed = template, sampling, complete, seed
        self._batch_size = max(1, batch_size)
        self._batcher: _Batcher[tuple[SentenceTask, int], Generation] = _Batcher(self._run, batch_size)
        self._floor_prompts: list[str] = []

    def expect(self, tasks: Sequence[SentenceTask]) -> None:
        """Lay every call out for the largest batch of `tasks` (their longest prompts, by characters), so the
        sampler compiles once for the whole document instead of once per new batch shape."""
        longest = sorted(dict.fromkeys(self._prompt(task) for task in tasks), key=len, reverse=True)
        k = self.sampling.samples_for(self.template)
        self._floor_prompts = [p for p in longest[: self._batch_size] for _ in range(k)]

    def _prompt(self, task: SentenceTask) -> str:
        return self.template.text(task, self.sampling.m)[len(self.template.shared_prefix()) :]

    async def start(self) -> None:
        """Nothing to check: the model is loaded."""

    async def generate(self, task: SentenceTask, attempt: int = 0) -> Generation:
        """Samples for `task`, batched with other sentences waiting at the same time."""
        return await self._batcher.submit((task, attempt))

    def _run(self, items: list[tuple[SentenceTask, int]]) -> list[Generation]:
        s, t = self.sampling, self.template
        k = s.samples_for(t)
        prompts = [self._prompt(task) for task, _ in items for _ in range(k)]
        texts = self._complete(
            prompts,
            s.max_tokens_for(t),
            s.temperature,
            s.top_p,
            _batch_seed(self._seed, items),
            max_lines=s.lines_per_sample(t),
            prefix=t.shared_prefix(),
            floor_prompts=self._floor_prompts,
        )
        return [Generation(texts[i * k : (i + 1) * k]) for i in range(len(items))]

    async def aclose(self) -> None:
        """Stop batching."""
        await self._batcher.aclose()

    def stats(self) -> dict[str, int]:
        """How many batches ran."""
        return {"batches": self._batcher.batches}


def qa_json_schema(m: int) -> dict[str, Any]:
    """JSON schema of the paper's reply: {"qa_list": [{"question", "answer"}, ...]}, at most m items."""
    pair = {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"],
    }
    return {
        "type": "object",
        "properties": {"qa_list": {"type": "array", "items": pair, "maxItems": m}},
        "required": ["qa_list"],
    }


class VLLMGenerator:
    """An in-process vLLM engine (GPU hosts), JSON-guided for chat prompts. Needs `pip install vllm`."""

    def __init__(
        self, model: str, template: PromptTemplate, sampling: GeneratorSampling, batch_size: int, seed: int = 0
    ):
        self.model, self.template, self.sampling, self._seed = model, template, sampling, seed
        self._vllm: Any = None
        self._llm: Any = None
        self._batcher: _Batcher[tuple[SentenceTask, int], Generation] = _Batcher(self._run, batch_size)

    def expect(self, tasks: Sequence[SentenceTask]) -> None:
        """Nothing to prepare: the engine schedules its own batches."""

    async def start(self) -> None:
        """Import vllm and build the engine (in a thread: it loads the model)."""
        try:
            import vllm
        except ImportError as e:
            raise GeneratorUnavailable(
                "generator.kind='vllm' needs the vllm package (a GPU host with `pip install vllm`); "
                "elsewhere serve the model (scripts/serve_vllm_generator.sh) and use generator.kind='openai'"
            ) from e
        self._vllm = vllm
        self._llm = await asyncio.to_thread(vllm.LLM, model=self.model, seed=self._seed)

    async def generate(self, task: SentenceTask, attempt: int = 0) -> Generation:
        """Samples for `task`, batched into one engine call with the other waiting sentences."""
        return await self._batcher.submit((task, attempt))

    def _guided_json(self) -> dict[str, Any]:
        schema = qa_json_schema(self.sampling.m)
        try:  # vLLM >= 0.12
            from vllm.sampling_params import StructuredOutputsParams
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            return {"guided_decoding": GuidedDecodingParams(json=schema)}
        return {"structured_outputs": StructuredOutputsParams(json=schema)}

    def _run(self, items: list[tuple[SentenceTask, int]]) -> list[Generation]:
        s, t = self.sampling, self.template
        params = self._vllm.SamplingParams(
            n=s.samples_for(t),
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens_for(t),
            seed=_batch_seed(self._seed, items),
            **({"stop": COMPLETION_STOP} if t.completion else self._guided_json()),
        )
        if t.completion:
            outputs = self._llm.generate([t.text(task, s.m) for task, _ in items], params, use_tqdm=False)
        else:
            outputs = self._llm.chat([t.messages(task, s.m) for task, _ in items], params, use_tqdm=False)
        return [Generation([o.text for o in out.outputs]) for out in outputs]

    async def aclose(self) -> None:
        """Stop batching."""
        await self._batcher.aclose()

    def stats(self) -> dict[str, int]:
        """How many engine calls ran."""
        return {"batches": self._batcher.batches}


_LOCAL_COMPLETERS: dict[tuple[Any, str, str], LocalCompleter] = {}
_LOCAL_LOCK = threading.Lock()


def local_completer(model: str, dtype: str = "float32") -> LocalCompleter:
    """The process's completer for (model, dtype): loaded on first use, then shared by every later document
    (an evaluation loop absorbs many documents with one generator load). `clear_local_completers` frees them."""
    from lift_jax import sampling

    key = (sampling.make_local_completer, str(model), str(dtype))  # a replaced factory (tests) gets its own
    with _LOCAL_LOCK:
        if key not in _LOCAL_COMPLETERS:
            _LOCAL_COMPLETERS[key] = sampling.make_local_completer(model, dtype)
        return _LOCAL_COMPLETERS[key]


def clear_local_completers() -> None:
    """Forget the cached local generator models (their memory is freed once no generator uses them)."""
    with _LOCAL_LOCK:
        _LOCAL_COMPLETERS.clear()


def make_generator(
    cfg: ml_collections.ConfigDict, dtype: str = "float32", seed: int = 0, completer: LocalCompleter | None = None
) -> Generator:
    """The generator `cfg.kind` names; a local one runs on `completer` if given (e.g. over a model already in
    memory), else loads `cfg.model` through lift_jax.sampling the first time in a process (slow: call it only
    when there is something to generate) and reuses it afterwards."""
    template = load_prompt(cfg.prompt, cfg.kind)
    sampling = GeneratorSampling.from_config(cfg)
    if cfg.kind == "openai":
        return OpenAIGenerator(ClientSettings.from_config(cfg), template, sampling, seed)
    if cfg.kind == "vllm":
        return VLLMGenerator(cfg.model, template, sampling, cfg.concurrency, seed)
    if cfg.kind == "local":
        complete = completer if completer is not None else local_completer(cfg.model, dtype)
        return LocalGenerator(complete, template, sampling, cfg.local_batch_size, seed)
    raise ConfigError(f"generator.kind {cfg.kind!r} is unknown; use one of {', '.join(KINDS)}")
