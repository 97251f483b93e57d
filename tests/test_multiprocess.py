"""Two absorb processes x 4 CPU devices (gloo) as one 8-device run, through scripts/absorb_multiprocess.sh.

The generator answers one pair per sentence, one request at a time, so each process's epoch-1 stream is in
sentence order and its chunks of a global batch are exactly the sentences a single process would put in that
batch (sentence i lives on process i % 2); epochs 2+ shuffle the same canonical union in both set-ups.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synth_fault_server import FaultServer
from xla_flags import xla_flags_with_devices

from lift_jax.models.weight_files import read_safetensors

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "scripts" / "absorb_multiprocess.sh"
CONFIG = Path(__file__).parent / "multiprocess_config.py"
DOCUMENT = " ".join(f"Item {i} of the ledger weighs {3 * i + 1} grams and sits on shelf {i % 5}." for i in range(20))
STEPS = 3 * 3  # 20 pairs in global batches of 8 -> 3 steps per epoch, 3 epochs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with FaultServer() as s:
        yield s


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoints) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multiprocess")
    (root / "document.txt").write_text(DOCUMENT)
    return {"root": root, "checkpoint": tiny_checkpoints["llama3"]}


def launch(ws: dict[str, Path], server: FaultServer, processes: int, out: Path, *extra: str) -> subprocess.Popen:
    """scripts/absorb_multiprocess.sh with 8 CPU devices in all; output in `out`.log."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": xla_flags_with_devices(8 // processes),
    }
    command = [
        "bash", str(SCRIPT), str(processes), "--config", str(CONFIG),
        f"--config.model_path={ws['checkpoint']}", f"--config.document={ws['root'] / 'document.txt'}",
        f"--config.output_dir={out}", f"--config.generator.base_url={server.base_url}", *extra,
    ]
    log = open(out.with_suffix(".log"), "w")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, out: Path, timeout: float = 300) -> None:
    code = proc.wait(timeout=timeout)
    assert code == 0, out.with_suffix(".log").read_text()[-3000:]


def adapter(out: Path) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in read_safetensors(out / "adapter" / "adapter_model.safetensors")}


def losses(out: Path) -> dict[int, float]:
    """step -> loss (a rerun's line for a step replaces the killed run's)."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records}


def checkpoint_steps(out: Path) -> list[int]:
    return [int(p.name) for p in (out / "checkpoints").glob("*") if p.name.isdigit()]


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, step: int) -> None:
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and max(checkpoint_steps(out), default=0) < step:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed: " + out.with_suffix(".log").read_text()


@pytest.fixture(scope="module")
def two_process_run(workspace, server) -> Path:
    out = workspace["root"] / "two"
    finish(launch(workspace, server, 2, out), out)
    return out


def test_two_processes_match_one_process_with_eight_devices(workspace, server, two_process_run):
    one = workspace["root"] / "one"
    finish(launch(workspace, server, 1, one), one)
    two = two_process_run
    want, got = losses(one), losses(two)
    assert sorted(want) == list(range(1, STEPS + 1)) and sorted(got) == sorted(want)
    np.testing.assert_allclose([got[s] for s in sorted(want)], [want[s] for s in sorted(want)], atol=1e-5)
    a, b = adapter(one), adapter(two)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-5, err_msg=key)
    # each process generated and cached its own half of the sentences; only process 0 wrote the run's outputs
    shards = sorted(p.name for p in (two / "qa_cache").glob("qa_cache*.jsonl"))
    assert shards == ["qa_cache.p0-of-2.jsonl", "qa_cache.p1-of-2.jsonl"]
    assert (two / "timing.json").exists() and "metrics" in (two / "process_1.log").read_text()


def test_kill_both_processes_then_rerun_gives_the_uninterrupted_adapter(workspace, server, two_process_run):
    out = workspace["root"] / "killed"
    server.delay_s = 0.3  # generation outlasts the first steps, so the kill lands inside epoch 1
    try:
        proc = launch(workspace, server, 2, out)
        wait_for_checkpoint(proc, out, 2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        server.delay_s = 0.0
    assert not (out / "adapter").exists()
    finish(launch(workspace, server, 2, out), out)
    want, got = adapter(two_process_run), adapter(out)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg=key)
    assert losses(out) == pytest.approx(losses(two_process_run), abs=1e-6)


def test_a_killed_process_makes_the_other_exit_with_an_error_naming_it(workspace, server):
    out = workspace["root"] / "lost"
    server.delay_s = 0.3
    try:
        proc = launch(workspace, server, 2, out)
        wait_for_checkpoint(proc, out, 1)
        victim = int(re.search(r"process 1 is pid (\d+)", out.with_suffix(".log").read_text()).group(1))
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        code = proc.wait(timeout=90)
        waited = time.time() - killed_at
    finally:
        server.delay_s = 0.0
    log = out.with_suffix(".log").read_text()
    assert code != 0 and waited < 60, log[-3000:]
    assert re.search(r"process 0 \(pid \d+\) exited with status [1-9]", log), log[-3000:]
    assert re.search(r"process 1 \(pid \d+\) exited with status 137", log), log[-3000:]
    # Process 0 ends either by the coordination service (lost heartbeats, naming task 1) or, when the kill lands
    # inside a collective, by gloo aborting on the half-received message first.
    heartbeat = "tasks are unhealthy (stopped sending heartbeats):\n1\n" in log
    assert heartbeat or "gloo::EnforceNotMet" in log, log[-3000:]


def test_launcher_without_lift_jax_is_one_clear_message(tmp_path):
    interpreter = tmp_path / "python"
    interpreter.write_text("#!/bin/sh\nexit 1\n")  # an interpreter that cannot import jax
    interpreter.chmod(0o755)
    out = subprocess.run(["bash", str(SCRIPT), "2", "--config", str(CONFIG)], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": str(interpreter)}, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith(f"absorb_multiprocess: {interpreter} cannot import jax and lift_jax;"), out.stderr
