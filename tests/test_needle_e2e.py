"""End to end on the real SmolLM2-135M-Instruct: absorb a haystack with a planted needle through the CLI, with
QA pairs from an OpenAI-compatible server on 127.0.0.1, then `ask` without the document.

The server plays the generator's part: for the needle's sentence it returns the pairs a generator LLM writes
for it (what a generator writes for it: the obvious question plus paraphrases); for every other sentence it returns
pairs made from the sentence's words (tests/synth_fault_server.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synth_fault_server import FaultServer
from xla_flags import xla_flags_with_devices

from lift_jax.eval.metrics import keywords_found
from lift_jax.eval.niah_data import NEEDLE, QUESTION, NiahCell, build_documents, load_essays
from lift_jax.eval.paths import niah_essays_dir

REPO = Path(__file__).resolve().parents[1]
NEEDLE_PAIRS = [
    ("According to the text, what is the best thing to do in San Francisco?",
     "Eat a sandwich and sit in Dolores Park on a sunny day."),
    ("Where does the text say to sit in San Francisco?", "In Dolores Park, on a sunny day, eating a sandwich."),
    ("What does the text recommend eating in San Francisco?", "A sandwich, in Dolores Park on a sunny day."),
    ("On what kind of day should you sit in Dolores Park?", "On a sunny day, with a sandwich."),
    ("What is the text's advice for a day in San Francisco?",
     "Eat a sandwich and sit in Dolores Park on a sunny day."),
]


def _run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "XLA_FLAGS": xla_flags_with_devices(None)}  # one CPU device, as a user runs it
    out = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_lifted_smollm2_answers_the_needle_question_the_base_model_cannot(tmp_path):
    essays = load_essays(niah_essays_dir())
    cell = NiahCell(length=60, depth=0.5, sample=0)  # the needle plus a few sentences of distractors
    haystack = next(build_documents(essays, [cell], lambda text: len(text.split())))
    document = tmp_path / "haystack.txt"
    document.write_text(haystack.text)
    reply = json.dumps({"qa_list": [{"question": q, "answer": a} for q, a in NEEDLE_PAIRS]})

    with FaultServer(replies={NEEDLE: reply}) as server:
        _run(
            "lift_jax.absorb", "--config", "smollm2_135m", "--config.method=lift", f"--config.document={document}",
            "--config.output_dir=run", "--config.generator.kind=openai",
            f"--config.generator.base_url={server.base_url}", "--config.generator.model=fake",
            "--config.generator.qa_per_sentence=5", "--config.generator.json_mode=false",
            # a short haystack: few, small steps at a high lr so 135M parameters memorise the needle
            "--config.train.epochs=4", "--config.train.batch_size=4", "--config.train.lr=1e-3",
            # one width bucket of 128 tokens (a chat-formatted pair here is under 100): the step compiles for 2
            # shapes instead of 4 and packs half the padding; padding is masked and packing exact, so the
            # training is the same (bucketing and packing are tested in test_train / test_batching)
            "--config.train.max_length=128", "--config.train.min_bucket=128",
            "--config.ask.measure_first_token=false",
            cwd=tmp_path,
        )
        assert server.successes[NEEDLE] == 1  # the needle was its own sentence

    lifted = _run("lift_jax.ask", "--run", "run", "--question", QUESTION, cwd=tmp_path)
    base = _run("lift_jax.ask", "--run", "run", "--base", "--question", QUESTION, cwd=tmp_path)
    assert keywords_found(lifted), lifted
    assert not keywords_found(base), base
