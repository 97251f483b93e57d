#!/usr/bin/env bash
# The runs behind docs/results.md, on this 2-core CPU with the bundled SmolLM2-135M-Instruct and the embedded
# local generator (the same model, few-shot prompted). Resumable: rerun the same command after a crash or a kill;
# finished (document, method) pairs are skipped, errored ones retried, finished adapters reused.
#
#   bash scripts/run_results.sh [output_dir]        (default docs/results)
#   PARTS=squad,niah bash scripts/run_results.sh     (only some parts: squad, niah, squad_window, niah_window)
#
# The default output directory is tracked by git except each document's adapters and checkpoints
# (docs/results/*/runs/): predictions, QA caches, logs, summaries and heatmaps are committed as they come, so a
# run that a session could not finish continues on another machine from what is committed.
# 1. SQuAD v1.1, first 20 paragraphs of the bundled dev half: truncated ICL, LIFT, Finetune-Raw, closed book
#    (base) in <out>/squad; context-distilled LIFT (lift+cd) with its own setting in <out>/squad_joint.
# 2. NIAH: lengths 1000,2000,3000 tokens x depths 0,0.25,0.5,0.75,1 x 1 sample: LIFT, Finetune-Raw, truncated ICL,
#    closed book in <out>/niah; lift+cd with its own setting in <out>/niah_joint (teacher outputs shared in
#    <out>/*/teacher_cache).
# lift+cd's setting (issue 15, docs/results.md): the paper-method settings below plus fill-in-the-blank questions
# (4 per sentence), the "What is ...?" fallback question, teacher windows cut to whole sentences and 10 epochs
# instead of 6; the only setting measured to reach both targets of issue 15. LIFT and Finetune-Raw keep 6 epochs.
# Settings that differ from the paper (Llama-3-8B, Qwen2.5-72B generator, rank 128, m = 10, 5 NIAH samples):
# LoRA rank 16 / alpha 32, lr 3e-4, 6 epochs for LIFT and Finetune-Raw alike, batch 4 rows, max 256 tokens per
# example, Finetune-Raw chunks of 256 tokens, m = 5 pairs asked per sentence in 2 few-shot samples, generator
# context 512 characters for NIAH, 1 NIAH sample per cell, greedy answers of at most 32 (SQuAD) / 64 (NIAH)
# tokens, no judge. Measured wall time on the 2 cores (docs/results.md): about 100 min for SQuAD and 2 h 20 min
# for NIAH, whose cells take about 5, 10 and 12 min at 1000, 2000 and 3000 tokens (so NIAH_LENGTHS=1000,1500,2000
# saves about 25 min and adding 4000 costs about 75 min more). lift+cd with its own setting comes on top: its
# SQuAD run took 64 min with the questions and teacher answers already cached, its 15 NIAH cells
# 6 h 23 min of absorb and answer time (about 14, 27 and 35 min per cell at 1000, 2000 and 3000 tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/results}
lengths=${NIAH_LENGTHS:-1000,2000,3000}
parts=",${PARTS:-squad,niah,squad_window,niah_window},"
for part in ${parts//,/ }; do
  case $part in
    squad | niah | squad_window | niah_window) ;;
    *) echo "error: unknown part '$part' in PARTS; use squad, niah, squad_window, niah_window" >&2; exit 2 ;;
  esac
done
source scripts/setup_env.sh
settings=(
  --config.model_path=bundled:smollm2-135m-instruct
  --config.generator.kind=local
  --config.generator.model=bundled:smollm2-135m-instruct
  --config.generator.qa_per_sentence=5
  --config.generator.samples_per_sentence=2
  --config.lora.rank=16 --config.lora.alpha=32
  --config.train.lr=3e-4 --config.train.batch_size=4 --config.train.max_length=256
  --config.cd.context_tokens=512 --config.cd.ce_weight=0.5 --config.cd.fallback_always=true
)
paper_epochs=(--config.train.epochs=6)
joint_cd=(
  --config.train.epochs=10
  --config.cd.cloze_per_sentence=4 --config.cd.fallback=what_is --config.cd.whole_sentences=true
)

# The 20 SQuAD passages and the 3 x 5 NIAH grid, shared by the paper-method and lift+cd invocations.
squad20=(--config.max_documents=20 --config.ask.max_new_tokens=32)
niah_grid=(
  --config.niah.lengths="$lengths" --config.niah.depths=0,0.25,0.5,0.75,1 --config.niah.samples=1
  --config.generator.max_context_chars=512
)

if [[ $parts == *,squad,* ]]; then
  echo "== SQuAD -> $out/squad"
  python -m lift_jax.eval.squad --config eval_squad "${settings[@]}" "${paper_epochs[@]}" "${squad20[@]}" \
    --config.methods=icl,lift,raw,base --config.output_dir="$out/squad"
  echo "== SQuAD, lift+cd -> $out/squad_joint"
  python -m lift_jax.eval.squad --config eval_squad "${settings[@]}" "${joint_cd[@]}" "${squad20[@]}" \
    --config.methods=lift+cd --config.output_dir="$out/squad_joint"
fi

if [[ $parts == *,niah,* ]]; then
  echo "== NIAH -> $out/niah"
  python -m lift_jax.eval.niah --config eval_niah "${settings[@]}" "${paper_epochs[@]}" "${niah_grid[@]}" \
    --config.methods=lift,raw,icl,base --config.output_dir="$out/niah"
  echo "== NIAH, lift+cd -> $out/niah_joint"
  python -m lift_jax.eval.niah --config eval_niah "${settings[@]}" "${joint_cd[@]}" "${niah_grid[@]}" \
    --config.methods=lift+cd --config.output_dir="$out/niah_joint"
fi

echo
echo "tables: $out/squad/summary.md + $out/squad_joint/summary.md, $out/niah/summary.md + $out/niah_joint/summary.md;"
echo "heatmaps: $out/niah*/heatmap_*.png; logs: */eval.log"

# ---- Beyond the window (issue 17) ---------------------------------------------------------------------------
# Documents longer than the truncated-ICL window, the paper's regime at CPU scale: ask.context_tokens=512 (prompt,
# document and answer), so icl and lift+icl see the first and last ~210 document tokens only. Every record gets
# in_window (its answer paragraph / the needle lies wholly inside that window); summary.md splits every metric
# into all / inside / outside; squad_window/f1_by_position.png plots F1 against the paragraph's position.
# 3. SQuAD articles (one document per article, every question of it): Construction (3043 tokens, 98 questions)
#    and 1973_oil_crisis (3910 tokens, 106 questions), SmolLM2 tokens. Other 2-4K-token articles of the file:
#    Victoria_(Australia) 3791 / 124, Geology 3879 / 116, Jacksonville,_Florida 3971 / 96 (titles are '|'-separated).
# 4. NIAH at 2000 and 4000 tokens x the 5 depths, the same window.
# The lift+cd teacher obeys the same window: 384 document tokens + its prompt, question and answer fit in 512.
# Here every method, lift+cd included, has the 6-epoch paper-method settings the committed tables were made with
# (before lift+cd's own setting existed).
# WINDOW_METHODS (default base,icl,lift,lift+icl,lift+cd) takes any eval method.
window_methods=${WINDOW_METHODS:-base,icl,lift,lift+icl,lift+cd}

if [[ $parts == *,squad_window,* ]]; then
  echo "== SQuAD articles beyond the window -> $out/squad_window"
  python -m lift_jax.eval.squad --config eval_squad "${settings[@]}" "${paper_epochs[@]}" --config.cd.context_tokens=384 \
    --config.document_unit=article --config.titles='Construction|1973_oil_crisis' --config.max_documents=0 \
    --config.methods="$window_methods" --config.ask.context_tokens=512 --config.ask.max_new_tokens=32 \
    --config.output_dir="$out/squad_window"
fi

if [[ $parts == *,niah_window,* ]]; then
  echo "== NIAH beyond the window -> $out/niah_window"
  python -m lift_jax.eval.niah --config eval_niah "${settings[@]}" "${paper_epochs[@]}" --config.cd.context_tokens=384 \
    --config.niah.lengths=2000,4000 --config.niah.depths=0,0.25,0.5,0.75,1 --config.niah.samples=1 \
    --config.generator.max_context_chars=512 --config.methods="$window_methods" --config.ask.context_tokens=512 \
    --config.output_dir="$out/niah_window"
fi

echo "beyond the window: $out/squad_window/summary.md (+ f1_by_position.png), $out/niah_window/summary.md"
