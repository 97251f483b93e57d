"""Generator prompts: the paper's templates, the few-shot completion prompt, prompt files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lift_jax.synth.prompts import BUILTIN_PROMPTS, PromptError, load_prompt
from lift_jax.synth.split import SentenceTask

TASK = SentenceTask(3, "The tower was built in 1841.", "Varrow Point is a finger of granite.")


@pytest.mark.parametrize("name", ["general", "squad", "niah"])
def test_paper_prompts_repeat_the_sentence_as_the_last_part(name: str) -> None:
    messages = load_prompt(name).messages(TASK, 10)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "generate at most 10 different questions" in messages[0]["content"]
    assert '"qa_list"' in messages[0]["content"]
    assert messages[1]["content"] == (
        "The paragraph:\nVarrow Point is a finger of granite. The tower was built in 1841.\n\n"
        "The last part of the paragraph:\nThe tower was built in 1841.\n\n"
        "Generate 10 different questions based on the content of the last part of the paragraph."
    )


def test_squad_and_niah_carry_their_examples() -> None:
    assert "Survivor Foundation" in BUILTIN_PROMPTS["squad"].system
    assert "Forest Park" in BUILTIN_PROMPTS["niah"].system
    assert "Example" not in BUILTIN_PROMPTS["general"].system


def test_auto_picks_fewshot_for_local_models() -> None:
    assert load_prompt("auto", "local").name == "fewshot"
    assert load_prompt("auto", "openai").name == "general"


def test_fewshot_shows_the_sentence_alone_and_shares_a_prefix() -> None:
    template = load_prompt("fewshot")
    text = template.text(TASK, 5)
    assert text.endswith("Text: The tower was built in 1841.\nQuestion:")
    assert "granite" not in text  # the context is not shown to small models
    prefix = template.shared_prefix()
    assert text.startswith(prefix) and prefix.endswith("\n") and "{" not in prefix
    assert text[len(prefix) :] == "Text: The tower was built in 1841.\nQuestion:"


def test_prompt_file_with_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text('Context: {context}\nAsk {m} questions on: {sentence}\nReply as {"qa_list": [...]}\n')
    template = load_prompt(str(path))
    assert not template.completion
    assert template.messages(TASK, 5) == [
        {
            "role": "user",
            "content": "Context: Varrow Point is a finger of granite.\n"
            'Ask 5 questions on: The tower was built in 1841.\nReply as {"qa_list": [...]}',
        }
    ]
    completion = tmp_path / "c.txt"
    completion.write_text("Text: {sentence}\nQuestion:")
    assert load_prompt(str(completion)).completion


def test_prompt_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("Paragraph: {paragraph}\nGenerate {num_questions} questions about {sentense}.")
    with pytest.raises(PromptError, match=r"unknown placeholder\(s\) \{num_questions\}, \{sentense\}"):
        load_prompt(str(bad))
    nothing = tmp_path / "nothing.txt"
    nothing.write_text("Generate {m} questions.")
    with pytest.raises(PromptError, match=r"must contain \{sentence\} or \{paragraph\}"):
        load_prompt(str(nothing))
    with pytest.raises(PromptError, match="neither a built-in prompt"):
        load_prompt(str(tmp_path / "missing.txt"))
