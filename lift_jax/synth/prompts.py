"""Generator prompts: the paper's three (appendix B), a few-shot completion prompt for small models, and
prompt files.

Templates use the placeholders `{context}` (preceding text), `{sentence}`, `{paragraph}` (context followed by
the sentence) and `{m}` (number of pairs). Other braces are literal, so JSON examples need no escaping.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from lift_jax.errors import LiftError
from lift_jax.synth.split import SentenceTask

PLACEHOLDERS = ("context", "sentence", "paragraph", "m")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

_INSTRUCTION = (
    "# Instruction\n"
    "You are given a paragraph extracted from an article. Please read it and generate at most {m} different "
    "questions based on the content of the **last part** of the paragraph. The questions should be diverse "
    "in "
    "both their form and the content they inquire about.\n\n"
)
_OUTPUT_FORMAT = (
    "# Output format\n"
    "Output in the JSON format. DO NOT output anything else.\n"
    "```\n"
    "{\n"
    '  "qa_list": [\n'
    '    {"question": ..., "answer": ...},\n'
    '    {"question": ..., "answer": ...},\n'
    "    ...\n"
    "  ]\n"
    "}\n"
    "```"
)
_SQUAD_EXAMPLES = (
    "# Examples\n"
    "Please follow the examples below to generate question-answer pairs from the given paragraph.\n\n"
    "Example 1:\n"
    "Paragraph: After Hurricane Katrina in 2005, Beyoncé and Rowland founded the Survivor Foundation to "
    "provide "
    "transitional housing for victims in the Houston area, to which Beyoncé contributed an initial $250,000. "
    "The "
    "foundation has since expanded to work with other charities in the city, and also provided relief "
    "following "
    "Hurricane Ike three years later.\n"
    "Question1: How much did Beyonce initially contribute to the foundation?\n"
    "Answer1: $250,000\n"
    "Question2: How has this foundation changed in recent years?\n"
    "Answer2: expanded to work with other charities\n"
    "Question3: What foundation did Beyoncé start after Hurricane Katrina?\n"
    "Answer3: Survivor Foundation\n"
    "Question4: What other hurricane did Beyoncé’s foundation help with?\n"
    "Answer4: Hurricane Ike\n\n"
    "Example 2:\n"
    "Paragraph: With a total area of 147,040 square miles (380,800 km²), Montana is slightly larger than "
    "Japan. "
    "It is the fourth largest state in the United States after Alaska, Texas, and California; the largest "
    "landlocked U.S. state; and the 56th largest national state/province subdivision in the world. To the "
    "north, "
    "Montana shares a 545-mile (877 km) border with three Canadian provinces: British Columbia, Alberta, and "
    "Saskatchewan, the only state to do so. It borders North Dakota and South Dakota to the east, Wyoming to "
    "the "
    "south and Idaho to the west and southwest.\n"
    "Question1: What state does Montana border to the south?\n"
    "Answer1: Wyoming\n"
    "Question2: What state does it border to the west?\n"
    "Answer2: Idaho\n"
    "Question3: Where are most of the states mountain ranges?\n"
    "Answer3: western half of the state\n"
    "Question4: How much of the state is prairie?\n"
    "Answer4: About 60 percent\n\n"
)
_NIAH_EXAMPLE = (
    "# Example\n"
    "The last part of the paragraph: The perfect way to start a Sunday in Portland is to grab a flat white "
    "from "
    "a neighborhood café, browse the shelves at a cozy used bookstore, and then take a slow walk through "
    "Forest "
    "Park.\n"
    "Question: What is the perfect way to start a Sunday in Portland?\n"
    "Answer: The perfect way to start a Sunday in Portland is to grab a flat white from a neighborhood café, "
    "browse the shelves at a cozy used bookstore, and then take a slow walk through Forest Park.\n\n"
)
_PAPER_USER = (
    "The paragraph:\n{paragraph}\n\n"
    "The last part of the paragraph:\n{sentence}\n\n"
    "Generate {m} different questions based on the content of the last part of the paragraph."
)
# Small models copy the pattern of the examples but not a JSON instruction; the sentence is shown alone.
_FEWSHOT = (
    "Write questions about the text and answer them using only the text.\n\n"
    "Text: The Eiffel Tower was completed in 1889 for the World's Fair in Paris.\n"
    "Question: When was the Eiffel Tower completed?\n"
    "Answer: The Eiffel Tower was completed in 1889.\n"
    "Question: For which event was the Eiffel Tower built?\n"
    "Answer: It was built for the World's Fair in Paris.\n\n"
    "Text: Marie Curie was the first person to win two Nobel Prizes, in physics and in chemistry.\n"
    "Question: Who was the first person to win two Nobel Prizes?\n"
    "Answer: Marie Curie was the first person to win two Nobel Prizes.\n"
    "Question: In which fields did Marie Curie win Nobel Prizes?\n"
    "Answer: She won Nobel Prizes in physics and in chemistry.\n\n"
    "Text: {sentence}\n"
    "Question:"
)


# Questions only, for context distillation (`lift+cd`), where the teacher writes the answers: a small model's
# answers are discarded there anyway, and writing none makes generation about three times shorter.
_FEWSHOT_QUESTIONS = (
    "Write questions that the text answers.\n\n"
    "Text: The Eiffel Tower was completed in 1889 for the World's Fair in Paris.\n"
    "Question: When was the Eiffel Tower completed?\n"
    "Question: For which event was the Eiffel Tower built?\n"
    "Question: In which city was the World's Fair of 1889 held?\n\n"
    "Text: Marie Curie was the first person to win two Nobel Prizes, in physics and in chemistry.\n"
    "Question: Who was the first person to win two Nobel Prizes?\n"
    "Question: In which fields did Marie Curie win Nobel Prizes?\n"
    "Question: How many Nobel Prizes did Marie Curie win?\n\n"
    "Text: {sentence}\n"
    "Question:"
)


class PromptError(LiftError, ValueError):
    """A prompt name or prompt file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
    """A generator prompt. Chat prompts (system + user) get a JSON reply; completion prompts end with
    `Question:` and the model continues them with `Question: / Answer:` lines."""

    name: str
    user: str
    system: str = ""
    completion: bool = False
    questions_only: bool = False  # a completion prompt whose samples are `Question:` lines without answers

    def identity(self) -> str:
        """The template text, as it enters the cache key."""
        kind = "questions" if self.questions_only else "completion" if self.completion else "chat"
        return f"{kind}\n{self.system}\n---\n{self.user}"

    def render_user(self, task: SentenceTask, m: int) -> str:
        """The user message (or the whole completion prompt) for `task`."""
        return _fill(self.user, task, m)

    def render_system(self, task: SentenceTask, m: int) -> str:
        """The system message for `task` ('' if the template has none)."""
        return _fill(self.system, task, m)

    def messages(self, task: SentenceTask, m: int) -> list[dict[str, str]]:
        """Chat messages for `task`."""
        system = self.render_system(task, m)
        user = {"role": "user", "content": self.render_user(task, m)}
        return [{"role": "system", "content": system}, user] if system else [user]

    def text(self, task: SentenceTask, m: int) -> str:
        """The prompt as one plain text (for completion endpoints and local models)."""
        system = self.render_system(task, m)
        return f"{system}\n\n{self.render_user(task, m)}" if system else self.render_user(task, m)

    def shared_prefix(self) -> str:
        """The start of `text()` that is the same for every task: everything before the first placeholder,
        cut back to a line break (so the rest tokenizes as it would in the whole prompt)."""
        template = f"{self.system}\n\n{self.user}" if self.system else self.user
        first = _PLACEHOLDER.search(template)
        head = template[: first.start()] if first else template
        return head[: head.rfind("\n") + 1]


BUILTIN_PROMPTS: dict[str, PromptTemplate] = {
    "general": PromptTemplate("general", _PAPER_USER, _INSTRUCTION + _OUTPUT_FORMAT),
    "squad": PromptTemplate("squad", _PAPER_USER, _INSTRUCTION + _SQUAD_EXAMPLES + _OUTPUT_FORMAT),
    "niah": PromptTemplate("niah", _PAPER_USER, _INSTRUCTION + _NIAH_EXAMPLE + _OUTPUT_FORMAT),
    "fewshot": PromptTemplate("fewshot", _FEWSHOT, completion=True),
    "fewshot-questions": PromptTemplate("fewshot-questions", _FEWSHOT_QUESTIONS, completion=True,
                                        questions_only=True),
}
QUESTION_PROMPTS = frozenset(name for name, t in BUILTIN_PROMPTS.items() if t.questions_only)


def _fill(template: str, task: SentenceTask, m: int) -> str:
    values = {
        "context": task.context,
        "sentence": task.sentence,
        "paragraph": f"{task.context} {task.sentence}".strip(),
        "m": str(m),
    }
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template)


def validate_template(text: str, source: str) -> None:
    """Raise PromptError for an unknown `{placeholder}` or a text showing neither sentence nor paragraph."""
    unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})
    allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    if unknown:
        names = ", ".join(f"{{{u}}}" for u in unknown)
        raise PromptError(f"prompt {source} has unknown placeholder(s) {names}; allowed: {allowed}")
    if not {"sentence", "paragraph"} & set(_PLACEHOLDER.findall(text)):
        raise PromptError(f"prompt {source} must contain {{sentence}} or {{paragraph}}; allowed: {allowed}")


def load_prompt(spec: str, kind: str = "openai") -> PromptTemplate:
    """A built-in template by name (`auto`: `fewshot` for the local generator, else `general`) or a file.

    A prompt file is one user message; if its text ends with `Question:` it is a completion prompt instead.
    """
    if spec == "auto":
        spec = "fewshot" if kind == "local" else "general"
    if spec in BUILTIN_PROMPTS:
        return BUILTIN_PROMPTS[spec]
    path = Path(spec).expanduser()
    if not path.is_file():
        names = ", ".join(["auto", *BUILTIN_PROMPTS])
        raise PromptError(f"prompt {spec!r} is neither a built-in prompt ({names}) nor an existing file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PromptError(f"prompt file {path} is not UTF-8 text") from e
    validate_template(text, f"file {path}")
    return PromptTemplate(str(path), text.strip(), completion=text.rstrip().endswith("Question:"))
