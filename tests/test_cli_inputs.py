"""Bad input gets one clear error: config keys, documents, model paths; middle truncation of ICL context."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lift_jax.answering import middle_truncate
from lift_jax.cli import UsageError, parse_config_args
from lift_jax.documents import DocumentError, read_document

REPO = Path(__file__).resolve().parent.parent


def test_bare_config_name_resolves_and_overrides_are_typed():
    cfg = parse_config_args(
        [
            "--config",
            "smollm2_135m.py",
            "--config.train.lr=0.001",
            "--config.lora.rank",
            "8",
            "--config.use_chat_template=false",
            "--config.document=doc.txt",
        ],
        "smollm2_135m",
        "usage",
    )
    assert cfg.train.lr == 0.001 and cfg.lora.rank == 8 and cfg.use_chat_template is False
    assert cfg.document == "doc.txt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config.train.lrr=1"], "unknown config key 'train.lrr'"),
        (["--config.nope.x=1"], "unknown config key 'nope'"),
        (["--config.train.epochs=five"], "expected int"),
        (["--config", "no_such_config"], "config 'no_such_config' not found"),
        (["--frobnicate"], "unknown argument '--frobnicate'"),
        (["--config.train=1"], "is a group"),
    ],
)
def test_bad_config_arguments_are_named(args, message):
    with pytest.raises(UsageError, match=message):
        parse_config_args(args, "smollm2_135m", "usage")


def test_installed_wheel_finds_configs_under_sys_prefix(tmp_path, monkeypatch):
    from lift_jax import config

    installed = tmp_path / "share" / "lift_jax" / "configs"
    installed.mkdir(parents=True)
    (installed / "mine.py").write_text(
        "from lift_jax.config import base_config\n\ndef get_config():\n    cfg = base_config()\n"
        "    cfg.seed = 7\n    return cfg\n"
    )
    monkeypatch.setattr(config, "REPO_CONFIGS", tmp_path / "no-checkout" / "configs")
    monkeypatch.setattr(config, "INSTALLED_CONFIGS", installed)
    assert config.load_config_file("mine").seed == 7
    with pytest.raises(FileNotFoundError, match="available: mine.py"):
        config.resolve_config_path("llama3_8b")


def test_documents_that_cannot_be_absorbed(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "bin.dat").write_bytes(b"PK\x03\x04\x00\x00binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match="is empty"):
        read_document(tmp_path / "empty.txt")
    (tmp_path / "dots.txt").write_text("... !!! -- ?\n\n* * *\n")
    with pytest.raises(DocumentError, match="has no words"):
        read_document(tmp_path / "dots.txt")
    with pytest.raises(DocumentError, match="looks binary"):
        read_document(tmp_path / "bin.dat")
    with pytest.raises(DocumentError, match="not UTF-8"):
        read_document(tmp_path / "latin1.txt")
    with pytest.raises(DocumentError, match="does not exist"):
        read_document(tmp_path / "missing.txt")
    (tmp_path / "utf16.txt").write_text("Hello there.", encoding="utf-16")
    with pytest.raises(DocumentError, match="utf16.txt is UTF-16 text; convert it to UTF-8"):
        read_document(tmp_path / "utf16.txt")
    (tmp_path / "bom.txt").write_bytes("\ufeffThe cat sat.".encode())
    assert read_document(tmp_path / "bom.txt") == "The cat sat."
    (tmp_path / "secret.txt").write_text("The cat sat.")
    (tmp_path / "secret.txt").chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        with pytest.raises(DocumentError, match="cannot read document .*secret.txt: Permission denied"):
            read_document(tmp_path / "secret.txt")


def _absorb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lift_jax.absorb", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--config.document=empty.txt"], "error: document empty.txt is empty"),
        (["--config.document=dots.txt"], "error: document dots.txt has no words"),
        (["--config.document=doc.txt", "--config.model_path=/nowhere/model"], "error: model path /nowhere/model"),
        (
            ["--config.document=doc.txt", "--config.model_path=noise.gguf"],
            "error: {dir}/noise.gguf is not a readable GGUF file",
        ),
        (
            ["--config.document=doc.txt", "--config.model_path=cut.gguf"],
            "error: {dir}/cut.gguf is not a readable GGUF file",
        ),
        (["--config.document=doc.txt", "--config.train.bogus=1"], "error: unknown config key 'train.bogus'"),
        (["--config.document=doc.txt", "--config.method=magic"], "error: method 'magic' is unknown"),
        (
            [
                "--config.document=doc.txt",
                "--config.generator.kind=openai",
                "--config.generator.base_url=http://127.0.0.1:9/v1",
                "--config.generator.max_retries=0",
                "--config.generator.timeout_s=2",
            ],
            "error: generator server http://127.0.0.1:9/v1 is not usable",
        ),
    ],
)
def test_absorb_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, extra, message):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "dots.txt").write_text(". . .\n\n!!! ???\n")
    (tmp_path / "doc.txt").write_text("A short document. It has two sentences.")
    (tmp_path / "noise.gguf").write_bytes(bytes(range(256)) * 20)  # not GGUF at all
    (tmp_path / "cut.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # a GGUF header cut after its version
    out = _absorb(
        "--config", str(REPO / "configs" / "smollm2_135m.py"), "--config.output_dir=run", *extra, cwd=tmp_path
    )
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr[-2000:]
    assert lines[0].startswith(message.format(dir=tmp_path.resolve())), lines[0]  # a model file by its full path
    assert not (tmp_path / "run").exists()


def test_middle_truncation_keeps_both_ends():
    assert middle_truncate(list(range(10)), 4) == [0, 1, 8, 9]
    assert middle_truncate(list(range(10)), 5) == [0, 1, 7, 8, 9]
    assert middle_truncate(list(range(3)), 5) == [0, 1, 2]
    assert middle_truncate(list(range(3)), 0) == []


class _FakeAnswerer:
    def answer(self, questions: list[str], document: str | None = None) -> list[str]:
        return ["an answer"] * len(questions)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], (7, 0.5, 0.9, 0)),  # the run's ask.* settings
        (["--max-new-tokens", "3", "--top-p", "0.25", "--seed", "2"], (3, 0.5, 0.25, 2)),  # flags given win
        (["--temperature", "0"], (7, 0.0, 0.9, 0)),  # 0 is a value given, not an absent flag
    ],
)
def test_ask_decodes_with_the_runs_ask_settings_unless_a_flag_overrides_them(tmp_path, monkeypatch, capsys, flags,
                                                                               expected):
    import json

    import lift_jax.ask as ask_cli
    from lift_jax.config import base_config

    cfg = base_config()
    cfg.ask.max_new_tokens, cfg.ask.temperature, cfg.ask.top_p = 7, 0.5, 0.9
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    seen = []

    def fake_answerer_for_run(run_dir, base, params):
        seen.append(params)
        return _FakeAnswerer()

    monkeypatch.setattr(ask_cli, "answerer_for_run", fake_answerer_for_run)
    ask_cli.main(["--run", str(tmp_path), "--question", "Why?", *flags])
    assert capsys.readouterr().out == "an answer\n"
    (params,) = seen
    assert (params.max_new_tokens, params.temperature, params.top_p, params.seed) == expected


def test_a_run_saved_without_ask_settings_decodes_with_the_config_defaults():
    from lift_jax.answering import ask_sampling
    from lift_jax.config import base_config
    from lift_jax.sampling import SamplingParams

    ask = base_config().ask
    params = ask_sampling({"model_path": "x"})
    assert (params.max_new_tokens, params.temperature, params.top_p) == (ask.max_new_tokens, ask.temperature,
                                                                         ask.top_p)
    params = ask_sampling({"ask": {"max_new_tokens": 5}}, top_p=0.5, seed=None)
    assert (params.max_new_tokens, params.top_p, params.seed) == (5, 0.5, 0)  # None: not given
    cfg = base_config()  # the eval harness passes its ConfigDict
    cfg.ask.temperature = 0.7
    assert ask_sampling(cfg, seed=3) == SamplingParams(ask.max_new_tokens, 0.7, ask.top_p, 3)


def test_raw_chunks_are_cut_from_the_text_at_token_boundaries():
    from tiny_models import tiny_tokenizer

    from lift_jax.documents import raw_chunks

    text = "Caf\u00e9 \u20ac5, \u732b\U0001f600! " * 12  # 2-, 3- and 4-byte characters, one token per byte
    tokenizer = tiny_tokenizer()
    chunks = raw_chunks(tokenizer, text, 16)
    assert "".join(chunks) == text and not any("\ufffd" in c for c in chunks)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(chunks) == -(-len(ids) // 16)
    assert all(abs(len(tokenizer(c, add_special_tokens=False)["input_ids"]) - 16) <= 3 for c in chunks[:-1])
