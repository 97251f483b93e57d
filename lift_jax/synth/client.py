"""Async client for OpenAI-compatible servers (`vllm serve`, llama.cpp, hosted APIs): bounded concurrency,
per-request deadlines, and retries of transient failures only.

Transient: connection errors, timeouts, 429 (honouring Retry-After), 5xx, and 200 replies whose body is not
a well-formed completion. Anything else (a 4xx) is final. The API key comes from an environment variable, is
sent as a Bearer token and never appears in reprs, logs or error messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import os
import random
import time
from typing import Any

import httpx
import ml_collections

from lift_jax.errors import LiftError

log = logging.getLogger(__name__)
_FATAL_STATUS = (401, 403, 404)  # wrong key, wrong URL or model: no request can succeed
_POOL_SIZE = 8
_MAX_BODY_BYTES = 32 << 20  # far above any completion; a server streaming without end is cut off here


class RequestFailed(LiftError, RuntimeError):
    """A request that failed for good: a final HTTP status, or transient failures until retries ran out."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts

    @property
    def fatal(self) -> bool:
        """True when the status means no request to this server can succeed (auth, URL or model is wrong)."""
        return self.status in _FATAL_STATUS


class _Transient(LiftError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class ClientSettings:
    """Connection and retry settings; `api_key_env` names the variable holding the key (not the key)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 64
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0
    json_mode: bool = False

    @classmethod
    def from_config(cls, cfg: ml_collections.ConfigDict) -> ClientSettings:
        """Settings from a generator- or judge-style ConfigDict (fields of the same names)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: cfg[k] for k in names if k in cfg})


@dataclasses.dataclass
class ClientStats:
    """Counters over the client's lifetime."""

    attempts: int = 0
    retries: int = 0
    succeeded: int = 0
    failed: int = 0
    json_mode_fallbacks: int = 0


@dataclasses.dataclass(frozen=True)
class Reply:
    """The text of each returned choice, and how many attempts the request took."""

    texts: list[str]
    attempts: int


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _choice_texts(body: bytes, chat: bool) -> list[str]:
    data = json.loads(body)
    choices = data["choices"]
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices")
    texts = [c["message"]["content"] if chat else c["text"] for c in choices]
    if not all(t is None or isinstance(t, str) for t in texts):
        raise ValueError("choice text is not a string")
    return [t or "" for t in texts]


def _model_ids(body: bytes) -> list[str]:
    """The ids listed by a GET /models reply ([] if it is not the usual {"data": [{"id": ...}]})."""
    try:
        return [m["id"] for m in json.loads(body)["data"] if isinstance(m["id"], str)]
    except (ValueError, KeyError, TypeError, RecursionError):
        return []


class OpenAIClient:
    """`chat()` and `complete()` against `settings.base_url`; create and use it inside one event loop."""

    def __init__(self, settings: ClientSettings):
        self.settings = settings
        self.stats = ClientStats()
        self._key = os.environ.get(settings.api_key_env, "").strip() if settings.api_key_env else ""
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        # httpcore's pool bookkeeping costs O(connections) per event, so high concurrency is spread over
        # several small pools (each request takes the least busy one) instead of one big pool.
        pools = -(-settings.concurrency // _POOL_SIZE)
        limits = httpx.Limits(max_connections=_POOL_SIZE, max_keepalive_connections=_POOL_SIZE)
        self._pools = [
            httpx.AsyncClient(
                base_url=settings.base_url.rstrip("/") + "/",
                headers=headers,
                timeout=httpx.Timeout(settings.timeout_s),
                limits=limits,
            )
            for _ in range(pools)
        ]
        self._busy = [0] * pools
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._json_mode = settings.json_mode

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={self.settings.base_url!r}, model={self.settings.model!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        for pool in self._pools:
            await pool.aclose()

    async def check(self) -> None:
        """Raise RequestFailed unless the server answers at all (any HTTP status but 401/403 counts); warn when
        it lists its models and the configured one is not among them (llama.cpp's server answers to any name,
        so that is not an error by itself; a server that refuses the name fails the first request with it)."""
        try:
            served = (await self._request("GET", "models", None, chat=False, parse=False)).texts
        except RequestFailed as e:
            if e.status is None or e.status in (401, 403):
                raise
            return
        if served and self.settings.model not in served:
            log.warning("model %r is not among the models %s lists (%s); sending it anyway",
                        self.settings.model, self.settings.base_url, ", ".join(map(repr, served[:20])))

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        n: int = 1,
        seed: int | None = None,
    ) -> Reply:
        """POST /chat/completions (JSON mode if configured and accepted); the choices' message contents."""
        payload = self._payload(
            messages=messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p, n=n, seed=seed
        )
        if self._json_mode:
            payload["response_format"] = {"type": "json_object"}
        return await self._request("POST", "chat/completions", payload, chat=True)

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        n: int = 1,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> Reply:
        """POST /completions; the text of each returned choice."""
        payload = self._payload(
            prompt=prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, n=n, seed=seed,
            stop=stop,
        )
        return await self._request("POST", "completions", payload, chat=False)

    def _payload(self, **fields: Any) -> dict[str, Any]:
        """The request body: the model plus every field that is set (n only when above 1)."""
        if fields.get("n") == 1:
            del fields["n"]
        return {"model": self.settings.model, **{k: v for k, v in fields.items() if v is not None}}

    async def _attempt(
        self, method: str, path: str, payload: dict[str, Any] | None, chat: bool, parse: bool
    ) -> list[str]:
        async with self._slots:
            self.stats.attempts += 1
            pool = self._busy.index(min(self._busy))
            self._busy[pool] += 1
            try:
                async with (
                    asyncio.timeout(self.settings.timeout_s),
                    self._pools[pool].stream(method, path, json=payload) as response,
                ):
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > _MAX_BODY_BYTES:
                            raise _Transient(f"reply body over {_MAX_BODY_BYTES >> 20} MB")
            except TimeoutError:
                raise _Transient(f"no complete reply within {self.settings.timeout_s:g} s") from None
            except httpx.TransportError as e:
                raise _Transient(f"{type(e).__name__}: {self._redact(str(e)) or 'no detail'}") from None
            finally:
                self._busy[pool] -= 1
        status = response.status_code
        if status == 200:
            if not parse:
                return _model_ids(bytes(body))
            try:
                return _choice_texts(bytes(body), chat)
            except (ValueError, KeyError, TypeError, IndexError, RecursionError) as e:
                snippet = self._redact(" ".join(body.decode("utf-8", "replace").split()))[:200]
                raise _Transient(f"malformed response body ({type(e).__name__}: {e}): {snippet}") from None
        detail = self._redact(" ".join(body.decode("utf-8", "replace").split()))[:300]
        if status == 429:
            raise _Transient(f"HTTP 429: {detail}", _retry_after(response.headers.get("retry-after")))
        if status >= 500:
            raise _Transient(f"HTTP {status}: {detail}")
        raise RequestFailed(
            f"HTTP {status} from {self.settings.base_url}/{path} (model {self.settings.model!r}): {detail}",
            status=status,
        )

    async def _request(
        self, method: str, path: str, payload: dict[str, Any] | None, chat: bool, parse: bool = True
    ) -> Reply:
        s = self.settings
        attempts = 0
        dropped_json_mode = False
        while True:
            attempts += 1
            try:
                texts = await self._attempt(method, path, payload, chat, parse)
            except RequestFailed as e:
                if e.status in (400, 422) and payload is not None and "response_format" in payload:
                    # Maybe the server does not take JSON mode: try this request without it.
                    payload = {k: v for k, v in payload.items() if k != "response_format"}
                    dropped_json_mode = True
                    continue
                self.stats.failed += 1
                e.attempts = attempts
                raise
            except _Transient as e:
                if attempts > s.max_retries:
                    self.stats.failed += 1
                    message = f"gave up after {attempts} attempts; last error: {e}"
                    raise RequestFailed(message, attempts=attempts) from None
                delay = random.uniform(0, min(s.backoff_max_s, s.backoff_s * 2 ** (attempts - 1)))
                if e.retry_after is not None:
                    delay = min(e.retry_after, s.retry_after_max_s)
                self.stats.retries += 1
                log.debug("retrying %s in %.2fs after attempt %d: %s", path, delay, attempts, e)
                await asyncio.sleep(delay)
                continue
            if dropped_json_mode and self._json_mode:  # it was JSON mode the server rejected
                self._json_mode = False
                self.stats.json_mode_fallbacks += 1
                log.info("server rejected response_format=json_object; continuing without JSON mode")
            self.stats.succeeded += 1
            return Reply(texts, attempts)
