"""A fault-injecting OpenAI-compatible server on 127.0.0.1 for the generator and judge tests.

Each request is tied to the sentence (or judge question) it is about; the n-th request for a sentence gets a
fault or a good reply by a seeded draw on (seed, sentence, n), so a schedule is deterministic whatever the
interleaving. Faults: 500, 429 with Retry-After, a hang past the client's timeout, a dropped connection, a
malformed JSON body, and a truncated body. Counters record every request and every good reply per sentence.
"""

from __future__ import annotations

import collections
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A good reply must reach the client within its timeout even on a loaded CI machine (two xdist workers beside
# model tests): with 0.5 s a slow good reply was sometimes retried and counted twice. A hang outlasts it.
CLIENT_TIMEOUT_S = 2.0
HANG_S = 3.0
FAULTS = ("500", "429", "hang", "drop", "malformed", "truncated")
_LAST_PART = re.compile(r"The last part of the paragraph:\n(.*?)\n\n", re.DOTALL)
_TEXT = re.compile(r"Text: (.*)\nQuestion:\s*$")
_JUDGE = re.compile(r"Question: (.*?)\n")
_M = re.compile(r"Generate (\d+) different questions")


def subject(payload: dict[str, Any]) -> str:
    """The sentence (or judge question) a generator/judge request is about."""
    text = payload["messages"][-1]["content"] if "messages" in payload else payload.get("prompt", "")
    for pattern in (_LAST_PART, _TEXT, _JUDGE):
        if match := pattern.search(text):
            return match.group(1).strip()
    return text


def qa_content(sentence: str, m: int) -> str:
    """A well-formed generator reply: m distinct pairs grounded in the sentence."""
    words = sentence.rstrip(".").split()
    pairs = [
        {"question": f"Question {i} about {' '.join(words[:3])}?", "answer": " ".join(words[i:])}
        for i in range(min(m, len(words)))
    ]
    return json.dumps({"qa_list": pairs})


class FaultServer:
    """Threaded HTTP server; use as a context manager. Attributes may be changed between runs."""

    def __init__(
        self,
        fault_rate: float = 0.0,
        seed: int = 0,
        hang_s: float = HANG_S,
        delay_s: float = 0.0,
        retry_after: str = "0",
        always_fail: tuple[str, ...] = (),
        reject_json_mode: int = 0,
        required_key: str | None = None,
        echo_auth: bool = False,
        replies: dict[str, str] | None = None,
    ):
        self.fault_rate, self.seed, self.hang_s, self.delay_s = fault_rate, seed, hang_s, delay_s
        self.retry_after, self.always_fail, self.reject_json_mode = retry_after, always_fail, reject_json_mode
        self.required_key, self.echo_auth = required_key, echo_auth
        self.replies = replies or {}  # subject -> reply text, instead of the generated default
        self.lock = threading.Lock()
        self.reset()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.handle(self, json.loads(body))

            def _send(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str] | None = None,
                length: int | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out or drop connections are part of the test

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Zero every counter."""
        with self.lock:
            self.requests: collections.Counter[str] = collections.Counter()
            self.successes: collections.Counter[str] = collections.Counter()
            self.faults: collections.Counter[str] = collections.Counter()
            self.payloads: list[dict[str, Any]] = []
            self.in_flight = self.max_in_flight = 0

    def fault_for(self, key: str, n: int) -> str | None:
        """The fault (or None) for the n-th request about `key`."""
        if any(s in key for s in self.always_fail):
            return "500"
        rng = random.Random(f"{self.seed}:{key}:{n}")
        return rng.choice(FAULTS) if rng.random() < self.fault_rate else None

    def handle(self, h: Any, payload: dict[str, Any]) -> None:
        key = subject(payload)
        with self.lock:
            n = self.requests[key]
            self.requests[key] += 1
            self.payloads.append(payload)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._respond(h, payload, key, n)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _respond(self, h: Any, payload: dict[str, Any], key: str, n: int) -> None:
        auth = h.headers.get("authorization", "")
        if self.echo_auth:
            return h._send(400, json.dumps({"error": f"bad request; you sent {auth}"}).encode())
        if self.required_key is not None and auth != f"Bearer {self.required_key}":
            return h._send(401, b'{"error": "invalid api key"}')
        if self.reject_json_mode and "response_format" in payload:  # the HTTP status it answers with
            return h._send(self.reject_json_mode, b'{"error": "response_format is not supported"}')
        fault = self.fault_for(key, n)
        if fault is not None:
            with self.lock:
                self.faults[fault] += 1
        if fault == "400":  # a request the server refuses whatever its options
            return h._send(400, b'{"error": "maximum context length is 4096 tokens"}')
        if fault == "500":
            return h._send(500, b'{"error": "internal"}')
        if fault == "429":
            return h._send(429, b'{"error": "slow down"}', {"retry-after": self.retry_after})
        if fault == "hang":
            time.sleep(self.hang_s)
            h.close_connection = True
            return None
        if fault == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return None
        if self.delay_s:
            time.sleep(self.delay_s)
        body = json.dumps(self._completion(payload, key)).encode()
        if fault == "malformed":
            return h._send(200, body[: len(body) // 2])
        if fault == "truncated":
            h.close_connection = True
            return h._send(200, body[: len(body) // 2], length=len(body))
        with self.lock:
            self.successes[key] += 1
        return h._send(200, body)

    def _completion(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        if "messages" in payload:
            m = _M.search(payload["messages"][-1]["content"])
            content = (
                self.replies[key] if key in self.replies else qa_content(key, int(m.group(1)) if m else 3)
            )
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}}
            return {"object": "chat.completion", "choices": [choice]}
        words = key.rstrip(".").split()
        default = f" What about {words[0]}?\nAnswer: {' '.join(words[:6])}\n"
        text = self.replies.get(key, default)
        return {"object": "text_completion", "choices": [{"index": 0, "text": text}]}

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
