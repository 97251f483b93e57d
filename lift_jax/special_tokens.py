"""The token ids every decoder and trainer agrees on: where generation stops and what pads a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# End-of-turn markers of the supported chat templates; decoding stops on any that the vocabulary has.
END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<end_of_turn>",
    "<|eot_id|>",
    "<|end|>",
    "<|endoftext|>",
    "<|end_of_text|>",
)


def stop_token_ids(tokenizer: Any, spec_eos: Sequence[int] = ()) -> tuple[int, ...]:
    """EOS ids of the config and tokenizer plus the chat end-of-turn tokens the vocabulary holds."""
    ids = set(spec_eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return tuple(sorted(ids))


def pad_token_id(tokenizer: Any, stop_ids: Sequence[int]) -> int:
    """The tokenizer's pad id, else the first stop id (a pad never reaches the loss or an answer)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if not stop_ids:
        raise ValueError("the tokenizer has no pad token and there is no stop token to pad with")
    return int(stop_ids[0])
