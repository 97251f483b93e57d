"""Training and asking share one prompt; the loss mask covers the answer and its end-of-turn only."""

from __future__ import annotations

from tiny_models import tiny_tokenizer

from lift_jax.prompting import BASE_TEMPLATE, PromptFormat, encode_example, encode_prompt, encode_text

END = 5  # <|end|> in the tiny tokenizer


def test_chat_example_masks_exactly_the_answer_and_end_of_turn():
    tok = tiny_tokenizer()
    fmt = PromptFormat(use_chat_template=True)
    ids, mask = encode_example(tok, "Who?", "Ann.", fmt, stop_ids=(END,))
    prompt = encode_prompt(tok, "Who?", fmt)
    assert ids[: len(prompt)] == prompt  # the ask-time prompt is a prefix of the training example
    assert tok.decode(prompt) == "<|user|>Who?<|end|><|assistant|>"
    answer = [t for t, m in zip(ids, mask, strict=True) if m]
    assert tok.decode(answer) == "Ann.<|end|>"
    assert mask == [0] * len(prompt) + [1] * (len(ids) - len(prompt))


def test_system_turn_is_part_of_the_prompt():
    tok = tiny_tokenizer()
    fmt = PromptFormat(use_chat_template=True, system="Be brief.")
    assert tok.decode(encode_prompt(tok, "Q", fmt)).startswith("<|system|>Be brief.<|end|>")


def test_base_format_without_chat_template():
    tok = tiny_tokenizer()
    fmt = PromptFormat(use_chat_template=False)
    ids, mask = encode_example(tok, "Who?", "Ann.", fmt, stop_ids=(END,))
    prompt = encode_prompt(tok, "Who?", fmt)
    assert tok.decode(prompt) == BASE_TEMPLATE.format(question="Who?")
    assert tok.decode([t for t, m in zip(ids, mask, strict=True) if m]) == " Ann.<|end|>"


def test_raw_text_trains_on_every_token_but_the_first():
    tok = tiny_tokenizer()
    ids, mask = encode_text(tok, "abc")
    assert len(ids) == 3 and mask == [0, 1, 1]


NO_SYSTEM_ROLE = (  # Gemma 2's rule, in the tiny tokenizer's markers
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
DATED = (  # Llama 3.2's rule: today's date in the system turn unless the caller passes one
    "{% if date_string is not defined %}{% set date_string = strftime_now('%d %b %Y') %}{% endif %}"
    "<|system|>Today Date: {{ date_string }}<|end|>"
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_a_template_without_a_system_role_gets_the_system_text_in_the_first_user_turn():
    tok = tiny_tokenizer()
    tok.chat_template = NO_SYSTEM_ROLE
    fmt = PromptFormat(use_chat_template=True, system="Be brief.")
    prompt = encode_prompt(tok, "Who?", fmt)
    assert tok.decode(prompt) == "<|user|>Be brief.\n\nWho?<|end|><|assistant|>"
    ids, mask = encode_example(tok, "Who?", "Ann.", fmt, stop_ids=(END,))
    assert ids[: len(prompt)] == prompt and tok.decode([t for t, m in zip(ids, mask, strict=True) if m]) == (
        "Ann.<|end|>")


def test_a_dated_template_renders_the_same_prompt_on_every_day():
    tok = tiny_tokenizer()
    tok.chat_template = DATED
    assert tok.decode(encode_prompt(tok, "Who?", PromptFormat())).startswith("<|system|>Today Date: 26 Jul 2024")
