"""The token ids every decoder and trainer agrees on: where generation stops and what pads a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lift_jax.models.families import UnsupportedModelError, all_end_of_turn_tokens

# End-of-turn markers of the supported families' chat templates; decoding stops on any the vocabulary has.
END_OF_TURN_TOKENS = all_end_of_turn_tokens()


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
        raise UnsupportedModelError("the tokenizer has no pad token and there is no stop token to pad with")
    return int(stop_ids[0])
