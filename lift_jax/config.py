"""Run configuration: ml_collections ConfigDicts in `configs/*.py`, overridable as `--config.<field>=value`."""

from __future__ import annotations

import copy
import importlib.util
import string
import sys
from pathlib import Path

import ml_collections

from lift_jax.errors import ConfigError, MissingInputError
from lift_jax.synth.prompts import QUESTION_PROMPTS

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
INSTALLED_CONFIGS = Path(sys.prefix) / "share" / "lift_jax" / "configs"  # where a wheel install puts them
METHODS = ("lift", "raw", "lift+raw", "lift+cd")
FALLBACKS = ("what_about", "text_about", "what_is", "none")
TEACHER_PROMPT = (
    "Read the document and answer the question in one short sentence.\n\nDocument:\n{document}\n\n"
    "Question: {question}"
)
GENERATING_METHODS = ("lift", "lift+raw", "lift+cd")  # methods that run the question generator


def base_config() -> ml_collections.ConfigDict:
    """Every field a run reads, with defaults that run on a CPU; model configs override what differs."""
    from lift_jax.synth.config import generator_config

    cfg = ml_collections.ConfigDict()
    cfg.model_path = "bundled:smollm2-135m-instruct"
    cfg.dtype = "float32"
    cfg.document = ""
    cfg.output_dir = "runs/default"
    cfg.method = "lift"
    cfg.seed = 0
    cfg.system_prompt = ""
    cfg.use_chat_template = True
    cfg.raw_chunk_tokens = 256  # Finetune-Raw chunk length
    # Folder for caches a method keeps beyond qa_cache (e.g. <shared_cache_dir>/teacher_cache), shared by runs;
    # '' = inside output_dir. The eval harness sets it to its own output_dir.
    cfg.shared_cache_dir = ""
    cfg.generator = generator_config()
    cfg.cd = cd_config()

    cfg.lora = ml_collections.ConfigDict()
    cfg.lora.rank = 128
    cfg.lora.alpha = 256.0
    cfg.lora.dropout = 0.0
    cfg.lora.targets = "all-linear"

    cfg.train = ml_collections.ConfigDict()
    cfg.train.epochs = 5
    cfg.train.lr = 5e-5
    cfg.train.schedule = "constant"
    cfg.train.warmup_steps = 0
    cfg.train.weight_decay = 0.0
    cfg.train.clip_norm = 1.0
    cfg.train.batch_size = 4  # rows per micro-batch, over all devices
    cfg.train.grad_accum = 1
    cfg.train.max_length = 512
    cfg.train.min_bucket = 32
    cfg.train.checkpoint_every = 50
    cfg.train.log_every = 1  # metrics.jsonl gets every N-th step, and always the checkpointed ones

    cfg.mesh = ml_collections.ConfigDict()
    cfg.mesh.data = -1
    cfg.mesh.fsdp = 1
    cfg.mesh.tensor = 1
    # Processes of one run (unset -1 / '': JAX_NUM_PROCESSES, JAX_PROCESS_ID, JAX_COORDINATOR_ADDRESS, else one
    # process); num_processes = 0 lets jax.distributed detect the cluster (Cloud TPU pod slice).
    cfg.mesh.num_processes = -1
    cfg.mesh.process_id = -1
    cfg.mesh.coordinator_address = ""  # HOST:PORT of process 0, which binds exactly that address
    cfg.mesh.heartbeat_timeout_s = 30  # a process silent this long ends the run on every other process
    cfg.mesh.initialization_timeout_s = 300  # how long processes wait for each other at start-up

    cfg.ask = ml_collections.ConfigDict()
    cfg.ask.max_new_tokens = 64
    cfg.ask.temperature = 0.0
    cfg.ask.top_p = 1.0
    cfg.ask.measure_first_token = True  # absorb decodes one token at the end for timing.json's TTFT
    cfg.ask.context_tokens = 0  # truncated-ICL budget; 0 = the model's max_position_embeddings minus the answer
    return cfg


def cd_config() -> ml_collections.ConfigDict:
    """Context distillation (method `lift+cd`): the base model reading a window of the document around each
    generated question's sentence is the teacher; the adapter learns its top-K answer distributions."""
    cd = ml_collections.ConfigDict()
    cd.context_tokens = 1024  # window around the sentence (capped so window + question + answer fit the model)
    cd.whole_sentences = False  # cut the window's two sides back to sentence boundaries (no cut-off sentence)
    cd.top_k = 20  # teacher log-probs kept per answer position; KL over the renormalised top-K
    cd.ce_weight = 0.0  # extra cross-entropy weight on the teacher's greedy token
    cd.max_answer_tokens = 64  # greedy teacher answer length
    cd.holdout = 0.1  # seeded share of questions never trained on, answered closed-book after training
    cd.max_questions_per_sentence = 4  # after de-duplication and the content-word filter; the teacher's batch
    cd.duplicate_overlap = 0.8  # questions whose content words overlap this much (Jaccard) are one question
    # A sentence with content but no usable generated question gets one deterministic question:
    # "what_about": "What does the document say about <its first content words>?"; "text_about": the same about
    # "the text", which SmolLM2-135M answers right more often reading a needle's window but which cost the demo
    # one of its three answers (docs/results.md, "Lever: the teacher's window"); "what_is":
    # "What is X?" for a sentence "X is Y" (a short subject before is/are/was/were), else "what_about".
    cd.fallback = "what_about"
    cd.fallback_always = False  # also ask the fallback question of sentences that kept generated ones
    # Fill-in-the-blank questions per sentence, beside the generated ones: the sentence with one of its first N
    # names, dates or numbers blanked out ('Fill in the blank as the document says: "... ____ ..."'). They need
    # no generator and ask for exactly the facts a reader is quizzed on; 0 = none.
    cd.cloze_per_sentence = 0
    # What the teacher reads: {document} is the window, {question} the question (then the chat template). The
    # request for a short answer keeps the targets on the facts and the teacher's decode short.
    cd.teacher_prompt = TEACHER_PROMPT
    # Comma-separated words the teacher never writes (their single-token spellings are masked at every step;
    # the kept log-probs are renormalised over the rest): words pointing at the document the student lacks.
    cd.suppress_words = ""
    # Drop the teacher answers with no content word beyond their question (echoes such as "The best thing to do
    # in San Francisco?" and stubs such as "The answer to the question is:"): a student trained on them learns to
    # echo. Off: on the NIAH 1000-token row it changed no cell (docs/results.md, "Lever: the teacher's window").
    cd.drop_echo = False
    return cd


def resolve_config_path(name: str) -> Path:
    """A config argument as a path: an existing file, or a bare name (with or without .py) in `configs/`."""
    path = Path(name)
    if path.exists():
        return path
    filename = name if name.endswith(".py") else f"{name}.py"
    folder = REPO_CONFIGS if REPO_CONFIGS.is_dir() else INSTALLED_CONFIGS
    candidate = folder / filename
    if path.parent == Path(".") and candidate.exists():
        return candidate
    available = ", ".join(sorted(p.name for p in folder.glob("*.py"))) or "none"
    raise MissingInputError(f"config {name!r} not found (looked at {path} and {candidate}); available: {available}")


def load_config_file(path: str | Path) -> ml_collections.ConfigDict:
    """Import a config file and return its `get_config()`."""
    path = resolve_config_path(str(path))
    spec = importlib.util.spec_from_file_location(f"lift_jax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.get_config()


def with_method_defaults(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `cfg` with the settings `auto` leaves to the method resolved: `lift+cd` with the local generator
    asks it for questions only (`generator.prompt=fewshot-questions`; the teacher writes the answers)."""
    cfg = copy.deepcopy(cfg)
    if cfg.method == "lift+cd" and cfg.generator.prompt == "auto" and cfg.generator.kind == "local":
        cfg.generator.prompt = "fewshot-questions"
    return cfg


def with_absolute_model_path(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `cfg` whose `model_path`, when it is a relative path to a local file or folder, is absolute: a
    run directory (its config.json, the adapter's `base_model_name_or_path`) must name its base model for
    `lift_jax.ask`, the exporters and PEFT run from any working directory. `bundled:` names stay as given."""
    path = Path(str(cfg.model_path)).expanduser()
    if str(cfg.model_path).startswith("bundled:") or path.is_absolute() or not path.exists():
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.model_path = str(path.resolve())
    return cfg


def suppressed_words(cd: ml_collections.ConfigDict) -> list[str]:
    """The words of `cd.suppress_words` (comma-separated; empty entries ignored)."""
    return [w.strip() for w in cd.suppress_words.split(",") if w.strip()]


def validate_method(cfg: ml_collections.ConfigDict) -> None:
    """Reject an unknown training method (with the list of valid ones) and unusable cd settings."""
    if cfg.method not in METHODS:
        raise ConfigError(f"method {cfg.method!r} is unknown; use one of {', '.join(METHODS)}")
    if cfg.generator.prompt in QUESTION_PROMPTS and cfg.method != "lift+cd":
        raise ConfigError(f"generator.prompt={cfg.generator.prompt} writes questions without answers, which only "
                          f"method lift+cd can train on (its teacher answers); method {cfg.method} needs QA pairs: "
                          "use generator.prompt=auto")
    if cfg.method == "lift+cd":
        cd = cfg.cd
        for name in ("context_tokens", "top_k", "max_answer_tokens", "max_questions_per_sentence"):
            if cd[name] < 1:
                raise ConfigError(f"cd.{name} must be at least 1, got {cd[name]}")
        if cd.cloze_per_sentence < 0:
            raise ConfigError(f"cd.cloze_per_sentence must not be negative, got {cd.cloze_per_sentence}")
        if not 0.0 <= cd.holdout < 1.0:
            raise ConfigError(f"cd.holdout must be in [0, 1), got {cd.holdout}")
        if cd.ce_weight < 0:
            raise ConfigError(f"cd.ce_weight must not be negative, got {cd.ce_weight}")
        if cd.fallback not in FALLBACKS:
            raise ConfigError(f"cd.fallback {cd.fallback!r} is unknown; use one of {', '.join(FALLBACKS)}")
        for word in suppressed_words(cd):
            if len(word.split()) != 1:
                raise ConfigError(f"cd.suppress_words holds {word!r}; give single words separated by commas, "
                                  "e.g. document,passage")
        try:
            fields = sorted({f for _, f, _, _ in string.Formatter().parse(cd.teacher_prompt) if f is not None})
        except ValueError as e:
            raise ConfigError(f"cd.teacher_prompt is not a valid format string ({e}); write braces as {{{{ }}}}") from e
        if fields != ["document", "question"]:
            raise ConfigError(f"cd.teacher_prompt must contain {{document}} and {{question}} and no other field, "
                              f"got fields {fields}")
