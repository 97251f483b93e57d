"""lift+cd: soft-target KL loss, teacher / student inputs, teacher cache, question filter, held-out split."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from fake_cd_absorb import DOCUMENT, fake_pairs, tiny_cd_config
from flax import nnx
from tiny_models import VOCAB
from train_helpers import lora_model

import lift_jax.absorbing.job as absorb_module
import lift_jax.distill.teacher as teacher_module
import lift_jax.synth.pipeline as pipeline
from lift_jax.batching import Example, make_batch
from lift_jax.config import base_config, load_config_file
from lift_jax.distill.cache import TeacherAnswer, TeacherCache, teacher_identity, teacher_key
from lift_jax.distill.questions import (
    adds_nothing,
    cloze_questions,
    cloze_spans,
    copula_question,
    fallback_question,
    select_questions,
)
from lift_jax.distill.stage import Distiller, is_held_out
from lift_jax.distill.targets import distill_example, renormalised
from lift_jax.distill.teacher import Teacher, document_windows, word_token_ids
from lift_jax.lora import frozen_base, lora_modules
from lift_jax.models import load
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.sampling import ShapeFloor
from lift_jax.special_tokens import stop_token_ids
from lift_jax.synth.split import split_sentences
from lift_jax.train import LoRATrainer, OptimizerConfig

FMT = PromptFormat()


def _contains(seq: list[int], sub: list[int]) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def _soft_example(rng: np.random.RandomState, k: int) -> Example:
    n = rng.randint(10, 30)
    prompt = rng.randint(3, n - 3)
    ids = rng.randint(6, VOCAB, n).tolist()
    soft_ids = rng.randint(0, VOCAB, (n, k)).astype(np.int32)
    logp = np.sort(rng.randn(n, k))[:, ::-1].astype(np.float32)
    p = renormalised(logp).astype(np.float32)
    weights = p.copy()
    weights[:, 0] += 0.5  # a CE term on the first candidate
    offset = np.sum(p * np.log(p), axis=-1).astype(np.float32)
    return Example(ids, [0] * prompt + [1] * (n - prompt), soft_ids, weights, offset)


@pytest.mark.parametrize("pack", [False, True])
def test_soft_target_loss_equals_numpy_kl_with_padding_and_answer_masks(tiny_checkpoints, pack):
    rng = np.random.RandomState(0)
    examples = [_soft_example(rng, 5), _soft_example(rng, 3), (rng.randint(6, VOCAB, 12).tolist(), [0] * 4 + [1] * 8)]
    batch = make_batch(examples, rows=4, accum=1, buckets=(32,), pad_id=0, pack=pack)  # a fully padded row
    model = lora_model(tiny_checkpoints["llama_tied"])
    total = count = 0.0
    for example in examples:  # the reference: each example alone, float64 log-softmax of the full logits
        ex = Example(*example)
        logits = np.asarray(model(np.asarray([ex.ids], np.int32)), np.float64)[0]
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        for i in range(1, len(ex.ids)):
            if not ex.loss_mask[i]:
                continue
            if ex.soft_ids is None:
                loss = -logp[i - 1, ex.ids[i]]
            else:
                loss = -np.sum(ex.soft_weights[i] * logp[i - 1, ex.soft_ids[i]]) + ex.soft_offset[i]
            total, count = total + loss, count + 1
    trainer = LoRATrainer(model, OptimizerConfig(lr=1e-3))
    metrics = jax.device_get(trainer.train_step(batch))
    assert metrics["tokens"] == count == sum(sum(Example(*e).loss_mask[1:]) for e in examples)
    assert abs(float(metrics["loss"]) - total / count) <= 1e-5


def test_distill_example_is_kl_to_the_renormalised_top_k_plus_ce(tiny_checkpoints):
    tok = load(tiny_checkpoints["qwen3"]).tokenizer
    logp = np.log(np.array([[0.5, 0.2, 0.1], [0.6, 0.3, 0.05]], np.float32))
    answer = TeacherAnswer((70, 5), np.array([[70, 71, 72], [5, 80, 81]], np.int32), logp)
    ex = distill_example(tok, "Where?", answer, FMT, ce_weight=0.5)
    prompt = encode_prompt(tok, "Where?", FMT)
    assert list(ex.ids) == prompt + [70, 5]
    assert list(ex.loss_mask) == [0] * len(prompt) + [1, 1]
    p = np.array([0.5, 0.2, 0.1]) / 0.8
    np.testing.assert_allclose(ex.soft_weights[len(prompt)], [*p, 0.5], rtol=1e-6)
    assert ex.soft_ids[len(prompt)].tolist() == [70, 71, 72, 70]  # the CE slot holds the greedy token
    np.testing.assert_allclose(ex.soft_offset[len(prompt)], np.sum(p * np.log(p)), rtol=1e-6)


def test_question_filter_drops_duplicates_and_off_topic_and_falls_back():
    sentence = "The lighthouse at Varrow Point was electrified in 1958."
    got = select_questions(
        ["When was the lighthouse electrified?", "When was the  lighthouse electrified ?",
         "Who won the football match?", "What happened at Varrow Point in 1958?"],
        sentence, "", limit=5, duplicate_overlap=0.8,
    )
    assert got == ["When was the lighthouse electrified?", "What happened at Varrow Point in 1958?"]
    want = "What does the document say about lighthouse Varrow Point electrified?"
    assert fallback_question(sentence, "what_about") == want
    assert fallback_question(sentence, "text_about") == want.replace("the document", "the text")
    assert fallback_question(sentence, "what_is") == want  # "was electrified" is no "X is Y": what_about
    assert fallback_question("It was so.", "what_about") is None
    assert fallback_question(sentence, "none") is None


def test_copula_question_inverts_a_short_subject_before_is_are_was_were():
    assert copula_question("The best thing to do in San Francisco is eat a sandwich.") == (
        "What is the best thing to do in San Francisco?")
    assert copula_question("Super Bowl 50 was an American football game.") == "What was Super Bowl 50?"
    assert copula_question("Its  keepers were  fishermen from Skye.") == "What were its keepers?"
    assert copula_question("The game was played on February 7.") is None  # passive
    assert copula_question("In 1958, the lighthouse was electrified.") is None  # a comma in the subject
    assert copula_question("It was so.") is None  # one word
    assert copula_question("the keeper was late.") is None  # not a sentence start
    assert copula_question("A very long subject with far too many words in it to be one thing is not asked.") is None
    assert fallback_question("The secret is honey.", "what_is") == "What is the secret?"


def test_an_answer_adds_nothing_when_it_has_no_content_word_beyond_its_question():
    assert adds_nothing("What is the best thing to do in San Francisco?", "The best thing to do in San Francisco?")
    assert adds_nothing("How do you start a startup?", "The answer to this question is:")
    assert adds_nothing("Where is it?", "")
    assert not adds_nothing("Is randomness deterministic?", "Randomness is not deterministic.")
    assert not adds_nothing("When was the lighthouse electrified?", "The lighthouse was electrified in 1958.")
    assert not adds_nothing("What do you do in San Francisco?", "Eat a sandwich in Dolores Park.")


def test_drop_echo_keeps_echoed_answers_out_of_training_and_the_held_out_share(tiny_checkpoints, tmp_path):
    loaded = load(tiny_checkpoints["qwen3"])
    tok = loaded.tokenizer
    cfg = tiny_cd_config(tiny_checkpoints["qwen3"], tmp_path / "run")
    cfg.cd.fallback, cfg.cd.holdout = "none", 0.0
    teacher = Teacher(loaded.module, tok, FMT, stop_token_ids(tok, loaded.spec.eos_token_ids), 0, cfg.cd.top_k,
                      cfg.cd.max_answer_tokens, cfg.cd.teacher_prompt)
    questions = ["How much does crate fjord weigh?", "What does crate fjord hold?"]
    texts = ["Crate fjord weighs?", "Crate fjord holds nine tonnes of herring."]

    def answers(window: str, asked: list[str]) -> list[TeacherAnswer]:
        assert asked == questions
        out = []
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            top = np.zeros((len(ids), 2), np.int32)
            out.append(TeacherAnswer(tuple(ids), top, top.astype(np.float32)))
        return out

    for drop, kept in ((True, [texts[1]]), (False, texts)):
        cfg.cd.drop_echo = drop
        distiller = Distiller(cfg, DOCUMENT, teacher, TeacherCache(tmp_path / f"tc{drop}").open_writer())
        distiller.answers = answers
        items = distiller(5, [(q, "x") for q in questions])
        assert [item.answer for item in items] == kept
        assert distiller.stats.echo_answers == (1 if drop else 0)
        assert distiller.stats.questions == len(kept)
        cfg.cd.holdout = 1.0  # everything held out: the echo is not among the held-out questions either
        distiller(5, [(q, "x") for q in questions])
        assert [h.teacher_answer for h in distiller.held_out] == kept
        cfg.cd.holdout = 0.0
        distiller.close()


def test_cloze_spans_are_the_names_dates_and_numbers_and_each_question_blanks_one():
    sentence = ("The American Football Conference (AFC) champion Denver Broncos beat the Carolina Panthers 24–10 on "
                "February 7, 2016, in May 2015 terms, at a cost of $1.2 billion.")
    spans = [sentence[a:b] for a, b in cloze_spans(sentence)]
    assert spans == ["American Football Conference", "Denver Broncos", "Carolina Panthers", "24–10",
                     "February 7, 2016", "May 2015", "1.2 billion"]  # no leading "The", no "(AFC)" repeat
    questions = cloze_questions(sentence, 2)
    assert questions == [
        'Fill in the blank as the document says: "The ____ (AFC) champion Denver Broncos beat the Carolina '
        'Panthers 24–10 on February 7, 2016, in May 2015 terms, at a cost of $1.2 billion."',
        'Fill in the blank as the document says: "The American Football Conference (AFC) champion ____ beat the '
        'Carolina Panthers 24–10 on February 7, 2016, in May 2015 terms, at a cost of $1.2 billion."',
    ]
    assert cloze_questions("It was so, and then it was not.", 3) == []
    assert cloze_questions(sentence, 0) == []


def test_the_step_estimate_counts_the_cloze_questions_of_every_sentence():
    from lift_jax.absorbing.settings import estimate_total_steps

    cfg = base_config()
    cfg.method, cfg.train.batch_size, cfg.train.epochs = "lift+cd", 4, 2
    cfg.cd.max_questions_per_sentence, cfg.cd.cloze_per_sentence = 2, 3
    sentences = len(split_sentences(DOCUMENT, cfg.generator.min_sentence_chars, cfg.generator.max_sentence_chars))
    assert sentences == 10
    assert estimate_total_steps(cfg, DOCUMENT, tokenizer=None) == 2 * -(-10 * (2 + 3) // 4) == 26


def test_teacher_cache_round_trip_and_torn_last_line(tmp_path):
    a = TeacherAnswer((3, 4, 5), np.array([[3, 9], [4, 8], [5, 1]], np.int32),
                      np.array([[-0.1, -2.5], [-0.3, -1.7], [-0.01, -5.0]], np.float32))
    cache = TeacherCache(tmp_path).open_writer()
    cache.append({"k1": a})
    cache.close()
    with open(tmp_path / "teacher_cache.jsonl", "ab") as f:
        f.write(b'{"key": "k2", "answer_ids": [1, 2')  # a crash mid-write
    reread = TeacherCache(tmp_path)
    assert len(reread) == 1 and reread.lookup("k2") is None
    got = reread.lookup("k1")
    assert got.answer_ids == a.answer_ids
    np.testing.assert_array_equal(got.top_ids, a.top_ids)
    np.testing.assert_array_equal(got.top_logprobs, a.top_logprobs)  # float32 survives exactly
    reread.open_writer().append({"k3": a})  # the torn line is cut off before appending
    reread.close()
    lines = (tmp_path / "teacher_cache.jsonl").read_bytes().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["k1", "k3"]
    assert len(TeacherCache(tmp_path)) == 2


def test_windows_hold_the_sentence_and_its_neighbours_within_budget(tiny_checkpoints):
    tok = load(tiny_checkpoints["qwen3"]).tokenizer
    sentences = split_sentences(DOCUMENT)
    windows = document_windows(tok, DOCUMENT, sentences, 96)  # byte-level tokenizer: 96 characters
    for s, w in zip(sentences, windows, strict=True):
        assert s.text in w and w in DOCUMENT
        assert len(w) <= 96
    middle, inner = windows[5], sentences[5].text
    before, after = middle.split(inner)
    assert sentences[4].text.endswith(before.strip()) and sentences[6].text.startswith(after.strip())
    assert len(before) >= 5 and len(after) >= 5 and len(middle) >= 90  # both neighbours, nearly the budget


def test_whole_sentence_windows_open_and_end_on_sentence_boundaries_within_budget(tiny_checkpoints):
    tok = load(tiny_checkpoints["qwen3"]).tokenizer
    sentences = split_sentences(DOCUMENT)
    cut = document_windows(tok, DOCUMENT, sentences, 240)  # byte-level tokenizer: 240 characters
    whole = document_windows(tok, DOCUMENT, sentences, 240, whole_sentences=True)
    texts = [" ".join(s.text.split()) for s in sentences]
    for s, w, c in zip(sentences, whole, cut, strict=True):
        flat = " ".join(w.split())
        assert s.text in flat and w in c  # never more than the token window, always the sentence itself
        assert any(flat.startswith(t) for t in texts) and any(flat.endswith(t) for t in texts)
    middle = " ".join(whole[5].split())
    assert middle == " ".join(texts[4:7])  # both ~70-character neighbours fit whole, the next ones do not
    assert sum(w != c for w, c in zip(whole, cut, strict=True)) >= len(sentences) - 2  # the token cut splits them


def test_teacher_reads_the_window_and_the_student_never_does(tiny_checkpoints, tmp_path, monkeypatch):
    loaded = load(tiny_checkpoints["qwen3"])
    tok = loaded.tokenizer
    stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
    seen: list[list[int]] = []
    real = teacher_module.generate_with_logprobs

    def spy(module, prompts, params, stop_ids, pad_id, line_break_ids=(), prefix=(), logprob_k=0, suppress_ids=(),
            floor=ShapeFloor()):  # noqa: B008 - the sampler's own default
        seen.extend(list(prefix) + list(p) for p in prompts)
        return real(module, prompts, params, stop_ids, pad_id, line_break_ids, prefix, logprob_k, suppress_ids,
                    floor)

    monkeypatch.setattr(teacher_module, "generate_with_logprobs", spy)
    cfg = tiny_cd_config(tiny_checkpoints["qwen3"], tmp_path / "run")
    cfg.cd.holdout = 0.0
    teacher = Teacher(loaded.module, tok, FMT, stops, 0, cfg.cd.top_k, cfg.cd.max_answer_tokens,
                      cfg.cd.teacher_prompt)
    distiller = Distiller(cfg, DOCUMENT, teacher, TeacherCache(tmp_path / "tc").open_writer())
    question = "How much does crate fjord weigh?"
    distiller(5, [(question, "x")])
    window_ids = tok(distiller.windows[5], add_special_tokens=False)["input_ids"]
    sentence_ids = tok(distiller.sentences[5], add_special_tokens=False)["input_ids"]
    assert len(seen) == 1 and _contains(seen[0], window_ids)
    # the teacher's output as the stage trains on it (from the cache: the teacher is not asked again; an
    # answer the random model ends at once is a valid output too)
    teacher_answer = distiller.answers(distiller.windows[5], [question])[0]
    assert len(seen) == 1
    student = distill_example(tok, question, teacher_answer, FMT)
    answer = list(teacher_answer.answer_ids)
    assert list(student.ids) == encode_prompt(tok, question, FMT) + answer
    assert not _contains(list(student.ids), sentence_ids)
    distiller.close()


def test_teacher_top_k_equals_a_full_forward_over_prompt_and_answer(tiny_checkpoints):
    """The top-K kept while decoding is the teacher's distribution at every answer position (the prefix shared
    by the questions computed once), as a plain forward pass over the whole prompt + answer gives it."""
    loaded = load(tiny_checkpoints["qwen3"])
    tok = loaded.tokenizer
    stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
    teacher = Teacher(loaded.module, tok, FMT, stops, 0, top_k=4, max_answer_tokens=12,
                      template=base_config().cd.teacher_prompt, batch=4)
    window = DOCUMENT[:400]
    questions = ["How much does crate fjord weigh?", "Who won?", "Where is the harbour?"]
    answers = teacher.answer(window, questions)
    forward = jax.jit(lambda ids: loaded.module(ids))
    assert len(answers) == 3
    for question, answer in zip(questions, answers, strict=True):
        prompt = teacher.prompt_ids(window, question)
        n = len(answer.answer_ids)
        assert n == 12 or answer.answer_ids[-1] in stops
        logits = np.asarray(forward(np.asarray([prompt + list(answer.answer_ids)], np.int32)), np.float64)[0]
        logits = logits[len(prompt) - 1 : len(prompt) - 1 + n]
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        np.testing.assert_array_equal(answer.top_ids[:, 0], answer.answer_ids)  # greedy
        np.testing.assert_allclose(answer.top_logprobs, np.take_along_axis(logp, answer.top_ids, -1), atol=1e-5)
        np.testing.assert_allclose(answer.top_logprobs, -np.sort(-logp, -1)[:, :4], atol=1e-5)


class _WordTokenizer:
    """A tokenizer over a fixed table: known strings are one token, anything else one token per character."""

    TABLE = {"document": 1, " document": 2, "Document": 3, " passage": 4, " Passage": 5, " documents": 6}

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [self.TABLE[text]] if text in self.TABLE else [100 + ord(c) for c in text]
        return {"input_ids": ids}

    def decode(self, ids: list[int]) -> str:
        names = {v: k for k, v in self.TABLE.items()}
        return "".join(names[i] if i in names else chr(i - 100) for i in ids)


def test_suppressed_words_are_their_single_token_spellings():
    tok = _WordTokenizer()
    assert word_token_ids(tok, ["document"]) == (1, 2, 3)  # " Document" is split: left alone
    assert word_token_ids(tok, ["passage", "documents"]) == (4, 5, 6)
    assert word_token_ids(tok, ["essay"]) == ()


def test_suppressing_the_teachers_words_changes_its_answer_and_its_cache_key(tiny_checkpoints, tmp_path):
    loaded = load(tiny_checkpoints["qwen3"])
    tok = loaded.tokenizer
    stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
    cfg = tiny_cd_config(tiny_checkpoints["qwen3"], tmp_path / "run")
    cfg.cd.holdout = 0.0
    window, question = DOCUMENT[:300], "How much does crate fjord weigh?"

    def teacher(suppress: tuple[int, ...]) -> Teacher:
        return Teacher(loaded.module, tok, FMT, stops, 0, cfg.cd.top_k, cfg.cd.max_answer_tokens,
                       cfg.cd.teacher_prompt, suppress_ids=suppress)

    free = teacher(()).answer(window, [question])[0]
    banned = tuple(sorted(set(free.answer_ids[:2]) - set(stops)))
    assert banned
    barred = teacher(banned).answer(window, [question])[0]
    assert not set(barred.answer_ids) & set(banned) and not set(barred.top_ids.ravel()) & set(banned)
    plain = Distiller(cfg, DOCUMENT, teacher(()), TeacherCache(tmp_path / "a").open_writer())
    strict = Distiller(cfg, DOCUMENT, teacher(banned), TeacherCache(tmp_path / "b").open_writer())
    assert "suppress_ids" not in plain.identity and strict.identity["suppress_ids"] == list(banned)
    plain.close()
    strict.close()


def test_teacher_identity_of_the_bundled_eval_config_is_the_one_the_committed_caches_were_keyed_by():
    # Any change to these settings (or to the default teacher prompt) re-keys every committed teacher cache
    # under docs/results: if that is intended, the results that read them must be recomputed.
    identity = teacher_identity(load_config_file("eval_niah"))
    assert identity["model"] == "bundled:smollm2-135m-instruct" and identity["max_answer_tokens"] == 40
    assert teacher_key(question="", window="", **identity) == (
        "760d90dae1c8b77a93c6d260abb633b21b826e6efa27da58f5397af8dc668142")


def test_distiller_refuses_a_teacher_built_with_other_settings_than_its_config(tiny_checkpoints, tmp_path):
    loaded = load(tiny_checkpoints["qwen3"])
    tok = loaded.tokenizer
    cfg = tiny_cd_config(tiny_checkpoints["qwen3"], tmp_path / "run")
    teacher = Teacher(loaded.module, tok, FMT, stop_token_ids(tok, loaded.spec.eos_token_ids), 0, cfg.cd.top_k,
                      cfg.cd.max_answer_tokens + 1, cfg.cd.teacher_prompt)
    with pytest.raises(ValueError, match=r"other cd\.max_answer_tokens than the config holds"):
        Distiller(cfg, DOCUMENT, teacher, TeacherCache(tmp_path / "tc").open_writer())


def test_frozen_base_is_the_base_model_and_skips_the_adapter_matmuls(tiny_checkpoints):
    plain = load(tiny_checkpoints["llama_tied"]).module
    trainer = LoRATrainer(lora_model(tiny_checkpoints["llama_tied"]), OptimizerConfig(lr=1e-3))
    trainer.lora = jax.tree.map(lambda x: x + 0.05, trainer.lora)  # an adapter that changes the logits
    teacher = frozen_base(trainer.graphdef, trainer.lora, trainer.rngs, trainer.base)
    student = nnx.merge(trainer.graphdef, trainer.lora, trainer.rngs, trainer.base)
    ids = np.asarray([[5, 6, 7, 8, 9]], np.int32)
    want = np.asarray(plain(ids))
    np.testing.assert_allclose(np.asarray(teacher(ids)), want, atol=1e-6)
    assert np.abs(np.asarray(student(ids)) - want).max() > 1e-3
    assert all(layer.merged for _, layer in lora_modules(teacher))
    assert not any(layer.merged for _, layer in lora_modules(student))


def test_lift_cd_absorb_holds_out_questions_and_trains_only_on_distilled_ones(tiny_checkpoints, tmp_path,
                                                                               monkeypatch):
    encoded = []
    real_encoder = absorb_module._encoder

    def spying_encoder(*args):
        encode = real_encoder(*args)

        def wrapped(item):
            example = encode(item)
            encoded.append((item, list(example.ids)))
            return example

        return wrapped

    monkeypatch.setattr(absorb_module, "_encoder", spying_encoder)
    monkeypatch.setattr(pipeline, "document_pairs", fake_pairs(0.0))
    cfg = tiny_cd_config(tiny_checkpoints["qwen3"], tmp_path / "run")
    summary = absorb_module.absorb(cfg, progress=False)
    cd = summary["cd"]
    held = {h["question"] for h in cd["held_out_answers"]}
    trained = {item.question for item, _ in encoded}
    assert cd["held_out"] == len(held) > 0 and not held & trained
    assert all(is_held_out(q, cfg.seed, cfg.cd.holdout) for q in held)
    assert not any(is_held_out(q, cfg.seed, cfg.cd.holdout) for q in trained)
    assert len(held | trained) == cd["questions"]
    assert cd["questions"] + cd["empty_answers"] == 19  # 9 sentences x 2 kept questions + 1 fallback
    assert cd["fallback_questions"] == 1 and "Who won the match yesterday?" not in trained
    assert all(item.teacher is not None for item, _ in encoded)
    tok = load(tiny_checkpoints["qwen3"]).tokenizer
    for sentence in split_sentences(DOCUMENT):  # the student never reads the document
        sentence_ids = tok(sentence.text, add_special_tokens=False)["input_ids"]
        assert not any(_contains(ids, sentence_ids) for _, ids in encoded)
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert timing["cd"]["holdout_f1"] == cd["holdout_f1"]
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["holdout_f1"] == cd["holdout_f1"] and last["held_out"] == cd["held_out"]

    from peft_reference import peft_model  # the adapter still loads in PEFT

    model = peft_model(tiny_checkpoints["qwen3"], tmp_path / "run" / "adapter")
    assert any("lora_A" in name for name, _ in model.named_parameters())


@pytest.mark.slow
def test_lift_cd_kill_then_rerun_gives_the_same_adapter_and_recomputes_nothing_cached(tiny_checkpoints, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from lift_jax.models.weight_files import read_safetensors

    script = Path(__file__).parent / "fake_cd_absorb.py"
    checkpoint = tiny_checkpoints["qwen3"]
    reference = tmp_path / "a" / "run"
    reference.parent.mkdir()
    subprocess.run([sys.executable, str(script), str(checkpoint), str(reference)], check=True, capture_output=True)

    crashed = tmp_path / "b" / "run"
    crashed.parent.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(checkpoint), str(crashed), "1.0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache_file = crashed / "teacher_cache" / "teacher_cache.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if cache_file.exists() and len(cache_file.read_bytes().splitlines()) >= 6:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cached_before = len(TeacherCache(crashed / "teacher_cache"))
    assert 6 <= cached_before < 19
    subprocess.run([sys.executable, str(script), str(checkpoint), str(crashed)], check=True, capture_output=True)

    cd = json.loads((crashed / "timing.json").read_text())["cd"]
    assert cd["teacher_cached"] == cached_before and cd["teacher_computed"] == 19 - cached_before
    assert len(cache_file.read_bytes().splitlines()) == 19  # nothing computed twice
    want = dict(read_safetensors(reference / "adapter" / "adapter_model.safetensors"))
    got = dict(read_safetensors(crashed / "adapter" / "adapter_model.safetensors"))
    assert want.keys() == got.keys()
    for key in want:
        np.testing.assert_allclose(np.array(got[key]), np.array(want[key]), atol=1e-6, err_msg=key)


def test_fallback_always_adds_the_sentence_question_within_the_question_limit(tiny_checkpoints, tmp_path):
    loaded = load(tiny_checkpoints["qwen3"])
    tok = loaded.tokenizer
    cfg = tiny_cd_config(tiny_checkpoints["qwen3"], tmp_path / "run")
    cfg.cd.fallback_always, cfg.cd.max_questions_per_sentence = True, 2
    teacher = Teacher(loaded.module, tok, FMT, stop_token_ids(tok, loaded.spec.eos_token_ids), 0, cfg.cd.top_k,
                      cfg.cd.max_answer_tokens, cfg.cd.teacher_prompt)
    distiller = Distiller(cfg, DOCUMENT, teacher, TeacherCache(tmp_path / "tc").open_writer())
    fallback = "What does the document say about Crate fjord dock weighs?"
    generated = ["How much does crate fjord weigh?", "What does crate fjord hold?"]
    assert distiller.questions(5, generated) == [generated[0], fallback]
    assert distiller.questions(5, []) == [fallback]
    assert distiller.stats.fallback_questions == 2
    cfg.cd.fallback_always = False
    assert Distiller(cfg, DOCUMENT, teacher, TeacherCache(tmp_path / "tc2").open_writer()).questions(
        5, generated) == generated
    cfg.cd.cloze_per_sentence = 1  # after the generated questions, outside their limit
    with_cloze = Distiller(cfg, DOCUMENT, teacher, TeacherCache(tmp_path / "tc3").open_writer())
    sentence = with_cloze.sentences[5]
    assert with_cloze.questions(5, generated) == [*generated, *cloze_questions(sentence, 1)]
    assert with_cloze.stats.cloze_questions == 1
    echoed = [generated[0], *cloze_questions(sentence, 1)]  # a generator that wrote the cloze question itself
    assert with_cloze.questions(5, echoed) == echoed
    assert with_cloze.stats.cloze_questions == 1
