"""QA-generation throughput against an OpenAI-compatible server with a fixed per-request latency.

    python benchmarks/generation.py [--latency-ms 200] [--rounds 4] [--concurrency 1 8 64]

The server is written here (asyncio, 127.0.0.1, an ephemeral port): every chat request waits `latency` and
then returns m = 10 QA pairs as JSON, like a remote generator whose time goes into generating. Each
concurrency level generates a document of max(16, rounds x concurrency) sentences into a fresh cache (so
each level keeps its requests in flight for a few rounds); the table shows QA pairs/s and the speed-up over
the first level.
The server stops when the benchmark ends, or after --max-seconds whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import threading
import time
from pathlib import Path

from bench_common import RESULTS_DIR, save_results

from lift_jax.synth.cache import QACache
from lift_jax.synth.config import generator_config
from lift_jax.synth.pipeline import GenerationSummary, generate_document

PAIRS = json.dumps({"qa_list": [{"question": f"Question {i}?", "answer": f"Answer {i}."} for i in range(10)]})


class LatencyServer:
    """OpenAI-compatible /v1/chat/completions and /v1/models, answering after a fixed delay, in a thread."""

    def __init__(self, latency_s: float, max_seconds: float):
        self.latency_s, self.max_seconds = latency_s, max_seconds
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(),), daemon=True
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                if request_line.startswith(b"POST"):
                    await asyncio.sleep(self.latency_s)
                content = {"choices": [{"index": 0, "message": {"role": "assistant", "content": PAIRS}}]}
                body = json.dumps(content).encode()
                head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                writer.write(head.encode() + b"\r\n" + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.max_seconds)
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def __enter__(self) -> LatencyServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


def document(sentences: int) -> str:
    """A document of `sentences` distinct sentences."""
    return " ".join(
        f"Record {i} states that station {i} measured {i * 7} millimetres of rain." for i in range(sentences)
    )


def run(base_url: str, doc: str, concurrency: int) -> tuple[GenerationSummary, float]:
    """Generate `doc` at `concurrency` into a fresh cache; (summary, seconds)."""
    cfg = generator_config()
    cfg.kind, cfg.base_url, cfg.model, cfg.api_key_env = "openai", base_url, "bench", ""
    cfg.prompt, cfg.concurrency, cfg.qa_per_sentence, cfg.json_mode = "general", concurrency, 10, False
    summary = GenerationSummary()
    with tempfile.TemporaryDirectory() as cache_dir:
        began = time.perf_counter()
        for _ in generate_document(doc, cfg, QACache(cache_dir), progress=False, summary=summary):
            pass
        return summary, time.perf_counter() - began


def main() -> None:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where generation.json goes")
    args = parser.parse_args()
    rows = []
    with LatencyServer(args.latency_ms / 1000, args.max_seconds) as server:
        for concurrency in args.concurrency:
            sentences = max(16, args.rounds * concurrency)
            summary, seconds = run(f"http://127.0.0.1:{server.port}/v1", document(sentences), concurrency)
            if summary.ok != sentences:
                raise SystemExit(f"only {summary.ok} of {sentences} sentences succeeded: {summary}")
            rows.append((concurrency, summary.ok, summary.pairs_generated, seconds))
    base = rows[0][2] / rows[0][3]
    lines = [f"server latency {args.latency_ms:g} ms per request, 10 QA pairs per reply",
             f"{'concurrency':>11} {'sentences':>9} {'pairs':>6} {'seconds':>8} {'pairs/s':>9} {'speed-up':>8}"]
    for concurrency, ok, pairs, seconds in rows:
        rate = pairs / seconds
        lines.append(f"{concurrency:>11} {ok:>9} {pairs:>6} {seconds:>8.2f} {rate:>9.1f} {rate / base:>7.1f}x")
    print("\n".join(lines))
    columns = ("concurrency", "sentences", "pairs", "seconds")
    save_results("generation", {"args": vars(args), "rows": [dict(zip(columns, r, strict=True)) for r in rows],
                                "table": lines}, args.out)


if __name__ == "__main__":
    main()
