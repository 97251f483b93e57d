"""The OpenAI-compatible client against the fault-injecting server: retries, Retry-After, JSON-mode fallback,
final 4xx, and an API key that never leaks."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from synth_fault_server import CLIENT_TIMEOUT_S, FaultServer

from lift_jax.synth.client import ClientSettings, OpenAIClient, RequestFailed

CHAT = [
    {"role": "user", "content": "The last part of the paragraph:\nThe tower is tall.\n\nGenerate 3 different"}
]


def settings(server: FaultServer, **overrides) -> ClientSettings:
    base = dict(
        base_url=server.base_url,
        model="fake",
        api_key_env="",
        timeout_s=CLIENT_TIMEOUT_S,
        max_retries=3,
        backoff_s=0.01,
        backoff_max_s=0.05,
    )
    return ClientSettings(**{**base, **overrides})


async def chat(client: OpenAIClient):
    return await client.chat(CHAT, max_tokens=64, temperature=0.0)


def run_chat(s: ClientSettings):
    async def go():
        async with OpenAIClient(s) as client:
            return await chat(client), client.stats

    return asyncio.run(go())


@pytest.mark.parametrize("fault", ["500", "429", "hang", "drop", "malformed", "truncated"])
def test_each_transient_fault_is_retried(fault: str) -> None:
    with FaultServer() as server:
        server.fault_for = lambda key, n: fault if n == 0 else None
        reply, stats = run_chat(settings(server))
    assert reply.attempts == 2 and stats.retries == 1
    assert '"qa_list"' in reply.texts[0]
    assert server.successes["The tower is tall."] == 1


def test_retries_run_out_with_the_last_error_named() -> None:
    with (
        FaultServer(always_fail=("tower",)) as server,
        pytest.raises(RequestFailed, match="gave up after 4 attempts; last error: HTTP 500") as info,
    ):
        run_chat(settings(server))
    assert info.value.attempts == 4 and server.requests["The tower is tall."] == 4


def test_retry_after_is_honoured() -> None:
    with FaultServer(retry_after="0.4") as server:
        server.fault_for = lambda key, n: "429" if n == 0 else None
        began = time.perf_counter()
        reply, _ = run_chat(settings(server, backoff_s=0.001, backoff_max_s=0.001))
    assert reply.attempts == 2 and time.perf_counter() - began >= 0.4


def test_a_4xx_is_final_and_not_retried() -> None:
    with FaultServer(required_key="right") as server, pytest.raises(RequestFailed, match="HTTP 401") as info:
        run_chat(settings(server))
    assert info.value.fatal and server.requests["The tower is tall."] == 1


def test_json_mode_falls_back_once_when_rejected() -> None:
    with FaultServer(reject_json_mode=True) as server:

        async def go():
            async with OpenAIClient(settings(server, json_mode=True)) as client:
                await chat(client)
                await chat(client)
                return client.stats

        stats = asyncio.run(go())
    assert stats.json_mode_fallbacks == 1
    assert ["response_format" in p for p in server.payloads] == [True, False, False]


def test_json_mode_is_sent_when_accepted() -> None:
    with FaultServer() as server:
        run_chat(settings(server, json_mode=True))
    assert server.payloads[0]["response_format"] == {"type": "json_object"}


def test_concurrency_is_bounded() -> None:
    with FaultServer(delay_s=0.05) as server:

        async def go():
            async with OpenAIClient(settings(server, concurrency=3)) as client:
                prompts = [[{"role": "user", "content": f"Question: q{i}\n"}] for i in range(12)]
                await asyncio.gather(*(client.chat(p, max_tokens=8, temperature=0.0) for p in prompts))

        asyncio.run(go())
    assert server.max_in_flight == 3


def test_the_api_key_never_leaks(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-5ecret-value-123"
    monkeypatch.setenv("SYNTH_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    with FaultServer(required_key=secret) as server:
        reply, _ = run_chat(settings(server, api_key_env="SYNTH_TEST_KEY"))  # the key is sent
        assert reply.attempts == 1
        server.echo_auth = True  # now the server echoes the Authorization header in its error body
        client_repr = ""
        with pytest.raises(RequestFailed) as info:

            async def go():
                nonlocal client_repr
                async with OpenAIClient(settings(server, api_key_env="SYNTH_TEST_KEY")) as client:
                    client_repr = repr(client) + repr(client.settings) + repr(client._pools[0].headers)
                    await chat(client)

            asyncio.run(go())
    error = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    assert "Bearer ***" in str(info.value)
    for text in (error, client_repr, caplog.text):
        assert secret not in text
