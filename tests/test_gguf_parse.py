"""A GGUF file is parsed once per process while it is unchanged: by the weights reader and by transformers (config
and tokenizer) alike."""

from __future__ import annotations

from pathlib import Path

import gguf
import gguf.gguf_reader
import numpy as np
import pytest

from lift_jax.models import gguf_parse
from lift_jax.models.gguf_parse import parsed_gguf, sharing_parses


def _write_gguf(path: Path, extra_keys: int = 0) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    for i in range(extra_keys):
        writer.add_uint32(f"test.key{i}", i)
    writer.add_token_list(["<s>", "hello", "wörld", ""])
    writer.add_token_scores([0.0, -1.5, -2.25, 3.0])
    writer.add_tensor("token_embd.weight", np.arange(8, dtype=np.float32).reshape(2, 4))
    writer.add_tensor("output.weight", np.arange(6, dtype=np.float16).reshape(3, 2))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every full parse (GGUFReader.__init__) from now on, with an empty parse cache."""
    seen: list[str] = []
    init = gguf.gguf_reader.GGUFReader.__init__

    def counted(self, path, mode="r"):
        seen.append(str(path))
        init(self, path, mode)

    monkeypatch.setattr(gguf.gguf_reader.GGUFReader, "__init__", counted)
    gguf_parse._parse.cache_clear()
    yield seen
    gguf_parse._parse.cache_clear()


def test_an_unchanged_file_is_parsed_once_and_a_rewritten_one_again(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "m.gguf"
    _write_gguf(path)
    first = parsed_gguf(path)
    assert parsed_gguf(str(path)) is first and len(parses) == 1
    _write_gguf(path, extra_keys=1)
    second = parsed_gguf(path)
    assert second is not first and "test.key0" in second.fields and len(parses) == 2


def test_the_parse_equals_gguf_readers_own_field_for_field_and_tensor_for_tensor(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    _write_gguf(path, extra_keys=2)
    ours, theirs = parsed_gguf(path), gguf.gguf_reader.GGUFReader(path)
    assert type(ours.data) is np.ndarray  # not a numpy.memmap, whose slicing made the parse 3-4x slower
    assert list(ours.fields) == list(theirs.fields)
    for name, field in theirs.fields.items():
        mine = ours.fields[name]
        assert (mine.offset, mine.types, mine.data) == (field.offset, field.types, field.data), name
        assert all(np.array_equal(a, b) for a, b in zip(mine.parts, field.parts, strict=True)), name
    tokens = ours.fields["tokenizer.ggml.tokens"]
    assert [str(bytes(tokens.parts[i]), "utf-8") for i in tokens.data] == ["<s>", "hello", "wörld", ""]
    assert [t.name for t in ours.tensors] == ["token_embd.weight", "output.weight"]
    for mine, tensor in zip(ours.tensors, theirs.tensors, strict=True):
        assert (mine.tensor_type, mine.data_offset) == (tensor.tensor_type, tensor.data_offset)
        np.testing.assert_array_equal(mine.data, tensor.data)


def test_sharing_parses_hands_out_the_parsed_reader_and_restores_gguf(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "m.gguf"
    _write_gguf(path)
    original = gguf.GGUFReader
    with sharing_parses():
        with sharing_parses():  # nested (or concurrent) blocks share one replacement
            assert gguf.GGUFReader(path) is parsed_gguf(path)
        assert gguf.GGUFReader(str(path)) is parsed_gguf(path) and len(parses) == 1
        copy_on_write = gguf.GGUFReader(path, "c")  # not read-only: a reader of its own
        assert copy_on_write is not parsed_gguf(path) and len(parses) == 2
    assert gguf.GGUFReader is original
    assert gguf.GGUFReader(path) is not parsed_gguf(path) and len(parses) == 3


@pytest.mark.slow
def test_loading_the_bundled_model_parses_its_gguf_once(parses: list[str]) -> None:
    from lift_jax.models import load

    loaded = load("bundled:smollm2-135m-instruct")
    assert len(parses) == 1 and parses[0].endswith(".gguf"), parses
    assert loaded.tokenizer("The quick brown fox")["input_ids"] == [504, 2365, 6354, 16438]
    load("bundled:smollm2-135m-instruct")
    assert len(parses) == 1
    assert gguf.GGUFReader is gguf.gguf_reader.GGUFReader
