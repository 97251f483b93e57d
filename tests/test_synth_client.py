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


@pytest.mark.parametrize("status", [400, 422])
def test_json_mode_falls_back_once_when_rejected(status: int) -> None:
    with FaultServer(reject_json_mode=status) as server:

        async def go():
            async with OpenAIClient(settings(server, json_mode=True)) as client:
                await chat(client)
                await chat(client)
                return client.stats

        stats = asyncio.run(go())
    assert stats.json_mode_fallbacks == 1
    assert ["response_format" in p for p in server.payloads] == [True, False, False]


def test_a_400_about_something_else_keeps_json_mode_and_names_the_model() -> None:
    tower, bridge = CHAT, [{"role": "user", "content": CHAT[0]["content"].replace("tower", "bridge")}]
    with FaultServer() as server:
        server.fault_for = lambda key, n: "400" if "tower" in key else None

        async def go():
            async with OpenAIClient(settings(server, json_mode=True)) as client:
                with pytest.raises(RequestFailed, match=r"HTTP 400 from .*\(model 'fake'\): .*context length"):
                    await client.chat(tower, max_tokens=64, temperature=0.0)
                await client.chat(bridge, max_tokens=64, temperature=0.0)
                return client.stats

        stats = asyncio.run(go())
    assert stats.json_mode_fallbacks == 0  # the 400 came back without JSON mode too: not JSON mode's fault
    assert ["response_format" in p for p in server.payloads] == [True, False, True]


def test_a_malformed_reply_is_named_with_its_start() -> None:
    with FaultServer() as server, pytest.raises(RequestFailed) as info:
        server.fault_for = lambda key, n: "malformed"
        run_chat(settings(server))
    assert "last error: malformed response body (JSONDecodeError: " in str(info.value)
    assert '{"object": "chat.completion", "choices"' in str(info.value)


def test_a_reply_body_past_the_limit_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lift_jax.synth.client._MAX_BODY_BYTES", 1 << 20)
    with (
        FaultServer(replies={"The tower is tall.": "x" * (2 << 20)}) as server,
        pytest.raises(RequestFailed, match="last error: reply body over 1 MB"),
    ):
        run_chat(settings(server, max_retries=0))


def test_the_server_check_warns_about_a_model_it_does_not_list(caplog: pytest.LogCaptureFixture) -> None:
    async def check(model: str) -> None:
        async with OpenAIClient(settings(server, model=model)) as client:
            await client.check()

    with FaultServer() as server:
        asyncio.run(check("fake"))
        assert "not among the models" not in caplog.text
        asyncio.run(check("other"))
    assert "model 'other' is not among the models" in caplog.text and "('fake')" in caplog.text


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


def test_a_key_read_with_its_trailing_newline_is_sent_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_TEST_KEY", "sk-test-key\n")  # e.g. export KEY=$(cat key.txt) keeps no newline, but
    with FaultServer(required_key="sk-test-key") as server:  # a .env file or a secret mount may
        reply, _ = run_chat(settings(server, api_key_env="SYNTH_TEST_KEY"))
    assert reply.attempts == 1


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
