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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DocumentError(f"cannot read document {path}: {e.strerror or e}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError(f"document {path} is UTF-16 text; convert it to UTF-8")
    if b"\x00" in data:
        raise DocumentError(f"document {path} looks binary (it contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is no part of the text
    except UnicodeDecodeError as e:
        raise DocumentError(f"document {path} is not UTF-8 text (byte {e.start}); convert it to UTF-8") from e
    if not text.strip():
        raise DocumentError(f"document {path} is empty")
    if not any(ch.isalnum() for ch in text):  # no sentence to ask about, no word to learn
        raise DocumentError(f"document {path} has no words (only punctuation and whitespace); give a text document")
    return text


def raw_chunks(tokenizer: Any, text: str, chunk_tokens: int) -> list[str]:
    """Consecutive chunks of about `chunk_tokens` tokens (Finetune-Raw trains a plain LM loss on each), cut from
    the text at token boundaries: they join back to `text`, and a character whose bytes two tokens share is never
    split (decoding each chunk's ids alone would write U+FFFD for it)."""
    if chunk_tokens <= 1:
        raise ConfigError(f"raw_chunk_tokens must be > 1, got {chunk_tokens}")
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    cuts = [0, *(offsets[i][0] for i in range(chunk_tokens, len(offsets), chunk_tokens)), len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
