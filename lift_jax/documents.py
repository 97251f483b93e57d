"""Reading a document to absorb, and cutting it into raw chunks for Finetune-Raw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lift_jax.errors import ConfigError, LiftError


class DocumentError(LiftError, ValueError):
    """The document is missing, empty, or not text."""


def read_document(path: Path) -> str:
    """The UTF-8 text of `path`; an empty, wordless, binary or missing file is a DocumentError naming it."""
    if not path.is_file():
        raise DocumentError(f"document {path} does not exist or is not a file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise DocumentError(f"document {path} looks binary (it contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DocumentError(f"document {path} is not UTF-8 text (byte {e.start}); convert it to UTF-8") from e
    if not text.strip():
        raise DocumentError(f"document {path} is empty")
    if not any(ch.isalnum() for ch in text):  # no sentence to ask about, no word to learn
        raise DocumentError(f"document {path} has no words (only punctuation and whitespace); give a text document")
    return text


def raw_chunks(tokenizer: Any, text: str, chunk_tokens: int) -> list[str]:
    """Consecutive chunks of about `chunk_tokens` tokens (Finetune-Raw trains a plain LM loss on each)."""
    if chunk_tokens <= 1:
        raise ConfigError(f"raw_chunk_tokens must be > 1, got {chunk_tokens}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [tokenizer.decode(ids[i : i + chunk_tokens]) for i in range(0, len(ids), chunk_tokens)]
