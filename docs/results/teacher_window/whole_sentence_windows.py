"""How many teacher windows `cd.whole_sentences=true` changes on a benchmark's documents: the windows `lift+cd`
builds for every sentence (split and sized as the `eval_squad` run does), with and without the option. Reads the
data file and the tokenizer only: no model.

    python docs/results/teacher_window/whole_sentence_windows.py ../shared/data/squad/dev-v1.1-half-a.json 20 \
        > docs/results/teacher_window/whole_sentence_windows.log
"""

import sys

from lift_jax.config import load_config_file
from lift_jax.distill.teacher import document_windows
from lift_jax.eval.squad_data import load_squad
from lift_jax.models.loader import load_tokenizer, resolve_source
from lift_jax.synth.split import split_sentences


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    cfg = load_config_file("eval_squad")
    tokenizer = load_tokenizer(resolve_source(cfg.model_path))
    g = cfg.generator
    total = changed = 0
    print(f"cd.context_tokens={cfg.cd.context_tokens}")
    print("| document | tokens | sentences | windows changed |")
    print("|---|---:|---:|---:|")
    for doc in load_squad(path, count):
        sentences = split_sentences(doc.text, g.min_sentence_chars, g.max_sentence_chars)
        plain = document_windows(tokenizer, doc.text, sentences, cfg.cd.context_tokens)
        whole = document_windows(tokenizer, doc.text, sentences, cfg.cd.context_tokens, whole_sentences=True)
        diff = sum(a != b for a, b in zip(plain, whole, strict=True))
        n_tokens = len(tokenizer(doc.text, add_special_tokens=False)["input_ids"])
        print(f"| {doc.id} | {n_tokens} | {len(sentences)} | {diff} |")
        total, changed = total + len(sentences), changed + diff
    print(f"\n{changed} of {total} windows changed")


if __name__ == "__main__":
    main()
