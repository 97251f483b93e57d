"""notebooks/quickstart.ipynb runs as written: its code cells execute in order in one namespace.

After the cell tagged `parameters` the test shortens the run (a tiny random Llama checkpoint instead of the
bundled SmolLM2, a short document, one epoch, QA pairs from a local OpenAI-compatible server) the way a user would
edit that cell; every other cell runs unchanged. The bundled model's own absorb-then-ask path is tested end to end
in test_needle_e2e.py; here the notebook's code is what is under test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from synth_fault_server import FaultServer

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _code_cells() -> list[tuple[str, list[str]]]:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [
        ("".join(c["source"]), c["metadata"].get("tags", [])) for c in cells if c["cell_type"] == "code"
    ]


def test_notebook_has_one_parameters_cell_before_the_absorb_cell():
    cells = _code_cells()
    tagged = [i for i, (_, tags) in enumerate(cells) if "parameters" in tags]
    absorbing = [i for i, (source, _) in enumerate(cells) if "absorb(cfg)" in source]
    assert len(tagged) == 1 and len(absorbing) == 1 and tagged[0] < absorbing[0]


@pytest.mark.slow
def test_quickstart_notebook_executes(tiny_checkpoints, tmp_path, capsys):
    short = tmp_path / "doc.txt"
    short.write_text(
        "The lighthouse on Merrow Point was painted green in 1931. Its keeper, Ada Finch, kept a log of every "
        "ship that passed. In the winter of 1932 she recorded forty-one ships. The log is now in the town museum."
    )
    namespace: dict = {}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with FaultServer() as server:
            for source, tags in _code_cells():
                exec(compile(source, f"{NOTEBOOK.name}", "exec"), namespace)  # noqa: S102
                if "parameters" in tags:
                    cfg = namespace["cfg"]
                    cfg.model_path = str(tiny_checkpoints["llama3"])
                    cfg.document, cfg.train.epochs = str(short), 1
                    cfg.cd.holdout, cfg.cd.max_answer_tokens = 0.0, 16  # no held-out check, short teacher answers
                    cfg.cd.max_questions_per_sentence, cfg.train.max_length = 2, 128
                    cfg.ask.measure_first_token = False  # the notebook's own answers show the adapter works
                    g = cfg.generator
                    g.kind, g.base_url, g.model, g.json_mode = "openai", server.base_url, "fake", False
    finally:
        os.chdir(cwd)
    summary = namespace["summary"]
    assert summary["generation"]["sentences"] == 4
    assert (tmp_path / "runs" / "notebook" / "adapter" / "adapter_model.safetensors").exists()
    printed = capsys.readouterr().out
    questions = namespace["questions"]
    assert sum(line.split(" -> ")[0] in questions for line in printed.splitlines()) == 2 * len(questions)
