"""Exports of runs on the bundled real models, checked with the real clients: llama-cpp-python runs the base GGUF
with the exported LoRA GGUF and decodes what lift_jax's merged model decodes; transformers loads the merged
directory (and transformers + PEFT the PEFT export) with lift_jax's merged logits.

Tolerance: llama.cpp computes with the quantized base weights as stored (SmolLM2: Q4_1) and
quantizes activations for those matmuls, lift_jax with the same weights dequantized to float32; the LoRA
tensors are float32 on both sides. So logits differ by the quantized-arithmetic error, measured here with and
without the adapter (README, "Use the LIFTed model elsewhere"); TOLERANCE bounds it, the adapter moves the
logits far more than that, and the same adapter without llama.cpp's q/k row interleave misses it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from export_runs import lift_jax_logits, make_run, merged_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from lift_jax.answering import answerer_for_run
from lift_jax.export import export_run
from lift_jax.export.gguf_lora import interleave_rope_rows
from lift_jax.lora import LoRAConfig
from lift_jax.models.bundled import smollm2_gguf
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.sampling import SamplingParams, generate_ids

pytestmark = pytest.mark.slow

QUESTION = "Who kept the lighthouse on Varrow Point, and when was it electrified?"
NEW_TOKENS = 16
LORA = LoRAConfig(rank=8, alpha=16.0, targets="all-linear")
# Max |logit difference| llama.cpp (quantized weights) vs lift_jax (float32 dequantized), per model: measured on
# this sequence 2.59 without and 2.56 with the adapter (SmolLM2, Q4_1), while the adapter moves lift_jax's
# logits by up to 17.5. Greedy decoding agrees while the top-2 margin (here at least 0.43) exceeds the error
# on the top two.
TOLERANCE = {"smollm2": 3.0}
B_SCALE = {"smollm2": 0.1}  # std of the random lora_b
# transformers vs lift_jax on the same float32 weights (the merged ones bit-identical to PEFT's merge_and_unload),
# 30 layers, logits up to 38, hidden states up to 9134: measured 1.96e-4 (merged directory, transformers' default
# sdpa attention) and 2.02e-4 (PEFT on the GGUF base). That is float32 rounding, not different math: with
# transformers' RMSNorm, rope and softmax also in float64, the two float64 forwards agree to 4e-13 (every layer
# within 1.1e-11). In float32 transformers is itself 0.97e-4 (sdpa) and 1.2e-4 (eager) from float64 and its two
# attention implementations differ by 1.1e-4; lift_jax is 2.0e-4 from float64, 2.7e-5 with its matmuls computed
# exactly (XLA:CPU's float32 matmul rounds ~25% more, rms, than torch's). So 1e-4, which the tiny models meet,
# is below transformers' own float32 spread on this model.
REAL_MODEL_FLOAT32_TOLERANCE = 3e-4
MODELS = {"smollm2": ("bundled:smollm2-135m-instruct", smollm2_gguf)}


@dataclasses.dataclass
class ExportedRun:
    run: Path
    gguf_lora: Path
    base_gguf: Path
    sequence: list[int]  # prompt + lift_jax's greedy continuation
    prompt_len: int
    merged_logits: np.ndarray  # lift_jax merged model on `sequence`, [seq, vocab]
    base_logits: np.ndarray  # lift_jax base model on `sequence`


def _exported(name: str, root: Path) -> ExportedRun:
    model_path, locate = MODELS[name]
    run = make_run(model_path, root / "run", LORA, b_scale=B_SCALE[name])
    merged = merged_model(run)
    prompt = encode_prompt(merged.tokenizer, QUESTION, PromptFormat(True, None))
    continuation = generate_ids(merged.module, [prompt], SamplingParams(NEW_TOKENS), stop_ids=[], pad_id=0)[0]
    sequence = prompt + continuation
    base = answerer_for_run(run, base=True, params=SamplingParams()).loaded
    return ExportedRun(
        run=run,
        gguf_lora=export_run(run, "gguf-lora", root / "doc.gguf"),
        base_gguf=locate(),
        sequence=sequence,
        prompt_len=len(prompt),
        merged_logits=lift_jax_logits(merged, np.asarray([sequence]))[0],
        base_logits=lift_jax_logits(base, np.asarray([sequence]))[0],
    )


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> ExportedRun:
    return _exported("smollm2", tmp_path_factory.mktemp("smollm2"))


def _llama(base: Path, lora: Path | None):
    llama_cpp = pytest.importorskip("llama_cpp")
    kwargs = {"lora_path": str(lora)} if lora else {}
    return llama_cpp.Llama(
        model_path=str(base), n_ctx=256, n_threads=2, logits_all=True, verbose=False, seed=0, **kwargs
    )


def llama_cpp_logits(base: Path, lora: Path | None, sequence: list[int]) -> np.ndarray:
    """llama.cpp's logits [seq, vocab] of `sequence` with the base GGUF (+ the LoRA GGUF)."""
    llm = _llama(base, lora)
    llm.eval(sequence)
    return np.array(llm.scores[: len(sequence)], np.float32)


def llama_cpp_greedy(base: Path, lora: Path, prompt: list[int], n: int) -> list[int]:
    """llama.cpp's greedy continuation of `prompt`: argmax of its own logits, one token at a time."""
    llm = _llama(base, lora)
    llm.eval(prompt)
    out: list[int] = []
    for _ in range(n):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval(out[-1:])
    return out


@pytest.mark.parametrize("name", ["smollm2"])
def test_llama_cpp_with_the_gguf_lora_decodes_lift_jax_merged_greedy_tokens(name, request):
    exported: ExportedRun = request.getfixturevalue(name)
    prompt = exported.sequence[: exported.prompt_len]
    got = llama_cpp_greedy(exported.base_gguf, exported.gguf_lora, prompt, NEW_TOKENS)
    assert got == exported.sequence[exported.prompt_len :]


@pytest.mark.parametrize("name", ["smollm2"])
def test_llama_cpp_lora_logits_match_lift_jax_within_the_quantization_tolerance(name, request):
    exported: ExportedRun = request.getfixturevalue(name)
    with_lora = llama_cpp_logits(exported.base_gguf, exported.gguf_lora, exported.sequence)
    without = llama_cpp_logits(exported.base_gguf, None, exported.sequence)
    lora_error = np.abs(with_lora - exported.merged_logits).max()
    base_error = np.abs(without - exported.base_logits).max()
    adapter_effect = np.abs(exported.merged_logits - exported.base_logits).max()
    print(f"{name}: |llama.cpp - lift_jax| max with LoRA {lora_error:.4f}, base {base_error:.4f}; "
          f"adapter moves lift_jax logits by up to {adapter_effect:.3f}")
    assert base_error <= TOLERANCE[name]
    assert lora_error <= TOLERANCE[name]
    assert adapter_effect >= 4 * TOLERANCE[name]


def test_without_the_q_k_row_interleave_llama_cpp_misses_lift_jax(smollm2, tmp_path):
    """The same adapter with lora_b of q/k left in Hugging Face's row order: what a converter that forgot
    llama.cpp's rope permutation would write. llama.cpp then disagrees with lift_jax beyond the tolerance."""
    reader = gguf.GGUFReader(smollm2.gguf_lora)
    n_heads = int(gguf.GGUFReader(smollm2.base_gguf).fields["llama.attention.head_count"].contents())
    n_kv = int(gguf.GGUFReader(smollm2.base_gguf).fields["llama.attention.head_count_kv"].contents())
    writer = gguf.GGUFWriter(tmp_path / "wrong.gguf", "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, LORA.alpha)
    for t in reader.tensors:
        data = np.array(t.data, np.float32).reshape([int(d) for d in reversed(t.shape)])
        for proj, heads in (("attn_q", n_heads), ("attn_k", n_kv)):
            if t.name.endswith(f"{proj}.weight.lora_b"):
                half = data.shape[0] // heads // 2
                data = data.reshape(heads, half, 2, -1).swapaxes(1, 2).reshape(data.shape)  # undo the interleave
                assert np.array_equal(interleave_rope_rows(data, heads), np.array(t.data).reshape(data.shape))
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    wrong = llama_cpp_logits(smollm2.base_gguf, tmp_path / "wrong.gguf", smollm2.sequence)
    assert np.abs(wrong - smollm2.merged_logits).max() > 2 * TOLERANCE["smollm2"]


def test_transformers_loads_the_merged_smollm2_with_lift_jax_merged_logits(smollm2, tmp_path):
    out = export_run(smollm2.run, "merged", tmp_path / "merged")
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = model(torch.tensor([smollm2.sequence])).logits[0].numpy()
    print(f"|transformers (merged directory) - lift_jax| max {np.abs(theirs - smollm2.merged_logits).max():.2e}")
    assert np.abs(theirs - smollm2.merged_logits).max() <= REAL_MODEL_FLOAT32_TOLERANCE
    # The tokenizer transformers derived from the GGUF, saved beside the weights, encodes the chat prompt alike.
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = encode_prompt(tokenizer, QUESTION, PromptFormat(True, None))
    assert prompt == smollm2.sequence[: smollm2.prompt_len]


def test_transformers_peft_on_the_gguf_base_with_lift_jax_merged_logits(smollm2, tmp_path):
    from peft import PeftModel

    out = export_run(smollm2.run, "peft", tmp_path / "adapter")
    base = AutoModelForCausalLM.from_pretrained(
        str(smollm2.base_gguf.parent), gguf_file=smollm2.base_gguf.name, dtype=torch.float32
    )
    model = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        theirs = model(torch.tensor([smollm2.sequence])).logits[0].numpy()
    print(f"|transformers + PEFT - lift_jax| max {np.abs(theirs - smollm2.merged_logits).max():.2e}")
    assert np.abs(theirs - smollm2.merged_logits).max() <= REAL_MODEL_FLOAT32_TOLERANCE
