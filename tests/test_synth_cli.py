"""`python -m lift_jax.synth`: fills the QA cache, survives kill -9, rejects bad input with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synth_fault_server import FaultServer
from synth_test_config import get_config

from lift_jax.synth.__main__ import main as synth_main
from lift_jax.synth.cache import QACache
from lift_jax.synth.pipeline import plan_document

REPO = Path(__file__).resolve().parent.parent
CONFIG = str(Path(__file__).parent / "synth_test_config.py")
DOC = " ".join(
    f"Fact number {i} says that the tower has {i + 3} windows on its north side." for i in range(24)
)


def command(doc: Path, out: Path, server_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lift_jax.synth",
        "--config",
        CONFIG,
        f"--config.document={doc}",
        f"--config.output_dir={out}",
        f"--config.generator.base_url={server_url}",
        *extra,
    ]


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def cached_keys(out: Path) -> set[str]:
    return {c.key for c in QACache(out / "qa_cache").completed()}


def main(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        synth_main(args[3:])
        code = 0
    except SystemExit as e:
        code = int(e.code)
    out, err = capsys.readouterr()
    return code, out, err


def test_generation_stage_fills_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    with FaultServer() as server:
        code, out, err = main(command(doc, tmp_path / "run", server.base_url), capsys)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] == 24 and summary["pairs_generated"] == 72
    records = [
        json.loads(x) for x in (tmp_path / "run" / "qa_cache" / "qa_cache.jsonl").read_text().splitlines()
    ]
    pairs = [r for r in records if "question" in r]
    assert len(pairs) == 72 and all(
        {"key", "sentence_index", "question", "answer"} <= r.keys() for r in pairs
    )


def test_kill_9_then_rerun_requests_exactly_the_missing_sentences(tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    out = tmp_path / "run"
    cfg = get_config().generator
    plan = plan_document(DOC, cfg)
    with FaultServer(delay_s=0.25) as server:
        proc = subprocess.Popen(
            command(doc, out, server.base_url), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while len(cached_keys(out)) < 6 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = cached_keys(out)
        assert 6 <= len(before) < len(plan)
        missing = {p.task.sentence for p in plan if p.key not in before}

        server.reset()
        server.delay_s = 0.0
        done = run(command(doc, out, server.base_url))
        assert done.returncode == 0, done.stderr
        assert set(server.requests) == missing and set(server.requests.values()) == {1}
    assert cached_keys(out) == {p.key for p in plan}
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["cached"] == len(before) and summary["ok"] == len(plan)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("\x00\x01binary", "looks binary")],
)
def test_bad_documents_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str, message: str
) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(content)
    code, _, err = main(command(doc, tmp_path / "run", "http://127.0.0.1:9/v1"), capsys)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_an_unreachable_generator_fails_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    with FaultServer() as server:
        url = server.base_url  # the port is closed once the server stops
    code, _, err = main(command(doc, tmp_path / "run", url), capsys)
    assert code == 1, err
    assert err.startswith("error: generator server") and "is not usable" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_bad_settings_fail_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    url = "http://127.0.0.1:9/v1"
    code, _, err = main(command(doc, tmp_path / "run", url, "--config.generator.kind=gpt"), capsys)
    assert code == 2 and "generator.kind 'gpt' is unknown" in err
    code, _, err = main(command(doc, tmp_path / "run", url, "--config.generator.prompt=nope.txt"), capsys)
    assert code == 2 and "prompt 'nope.txt' is neither a built-in prompt" in err
    code, _, err = main(command(doc, tmp_path / "run", url, "--config.generator.colour=red"), capsys)
    assert code == 2 and "unknown config key 'generator.colour'" in err
    assert not (tmp_path / "run").exists()
