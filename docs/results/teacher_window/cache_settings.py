"""Which `cd.max_answer_tokens` a committed SQuAD teacher cache was keyed by: the keys of each sentence's fallback
question (asked of every sentence with `cd.fallback_always`, so every lift+cd run over these paragraphs made
them) under the `eval_squad` config with each candidate value, each asked of its sentence's teacher window as
`lift+cd` builds it, looked up in the cache. Reads the data file, the cache and the tokenizer: no model.

    python docs/results/teacher_window/cache_settings.py ../shared/data/squad/dev-v1.1-half-a.json 20 \
        docs/results/squad docs/results/squad_cloze_e8 > docs/results/teacher_window/cache_settings.log
"""

import sys
from pathlib import Path

from lift_jax.config import load_config_file
from lift_jax.distill.cache import TeacherCache, teacher_identity, teacher_key
from lift_jax.distill.questions import fallback_question
from lift_jax.distill.teacher import document_windows
from lift_jax.eval.squad_data import load_squad
from lift_jax.models.loader import load_tokenizer, resolve_source
from lift_jax.synth.split import split_sentences

CANDIDATES = (40, 64)


def main() -> None:
    path, count, folders = sys.argv[1], int(sys.argv[2]), [Path(f) for f in sys.argv[3:]]
    cfg = load_config_file("eval_squad")
    g = cfg.generator
    tokenizer = load_tokenizer(resolve_source(cfg.model_path))
    asked = []  # (window, question) of every sentence's fallback question
    for doc in load_squad(path, max_documents=count):
        sentences = split_sentences(doc.text, g.min_sentence_chars, g.max_sentence_chars)
        windows = document_windows(tokenizer, doc.text, sentences, cfg.cd.context_tokens, cfg.cd.whole_sentences)
        for sentence, window in zip(sentences, windows, strict=True):
            question = fallback_question(doc.text[sentence.start : sentence.end], cfg.cd.fallback)
            if question is not None:
                asked.append((window, question))
    print(f"{count} paragraphs, {len(asked)} fallback questions (cd.fallback={cfg.cd.fallback})")
    print("| cache | lines | " + " | ".join(f"keys found with max_answer_tokens={m}" for m in CANDIDATES) + " |")
    print("|---|---:|" + "---:|" * len(CANDIDATES))
    for folder in folders:
        cache = TeacherCache(folder / "teacher_cache")
        found = []
        for m in CANDIDATES:
            cfg.cd.max_answer_tokens = m
            identity = teacher_identity(cfg)
            found.append(sum(cache.lookup(teacher_key(question=q, window=w, **identity)) is not None for w, q in asked))
        print(f"| {folder} | {len(cache)} | " + " | ".join(str(n) for n in found) + " |")


if __name__ == "__main__":
    main()
