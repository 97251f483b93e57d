"""SmolLM2-135M-Instruct (bundled, GGUF) on CPU: the demo and test default.

Settings differ from the paper (rank 16 instead of 128, lr 4e-4, 3 epochs; the local generator samples each
sentence twice; method lift+cd, the model reading the document as its own teacher) because a 135M model taught
by a 135M generator on two CPU cores needs them.
"""

from lift_jax.config import base_config


def get_config():
    cfg = base_config()
    cfg.model_path = "bundled:smollm2-135m-instruct"
    cfg.output_dir = "runs/smollm2_135m"
    cfg.lora.rank = 16
    cfg.lora.alpha = 32.0
    cfg.train.lr = 4e-4
    cfg.train.epochs = 3  # with lr 4e-4: 1.13x lift's time, 3/3 sample answers (docs/results/demo_cd_fast)
    cfg.train.batch_size = 8
    cfg.train.max_length = 256
    cfg.generator.kind = "local"
    cfg.generator.model = cfg.model_path
    cfg.generator.qa_per_sentence = 5
    cfg.generator.samples_per_sentence = 2
    # Context-distilled LIFT: a 135M generator writes mostly wrong answers, so it only asks (questions only) and
    # the model reading 512 tokens around each sentence answers (docs/results.md, "Context-distilled LIFT").
    cfg.method = "lift+cd"
    cfg.cd.context_tokens = 512  # teacher window: half the base default, for two CPU cores
    cfg.cd.max_answer_tokens = 40  # the teacher is asked for one short sentence
    cfg.cd.ce_weight = 0.5
    cfg.cd.fallback_always = True
    # The question options of the one lift+cd setting that reached both benchmark targets (docs/results.md,
    # "niah_joint" / "squad_joint"): blanks need no generator, "What is X?" and whole-sentence windows fix the
    # needle's failures. That setting trains 10 epochs at lr 3e-4; the demo keeps its faster schedule above.
    cfg.cd.cloze_per_sentence = 4
    cfg.cd.fallback = "what_is"
    cfg.cd.whole_sentences = True
    return cfg
