"""lift_jax.export on tiny random checkpoints of every family: merged directories load in transformers with
lift_jax's merged logits, the PEFT re-export loads in PEFT, the llama.cpp LoRA GGUF has llama.cpp's names,
shapes and q/k row order, and bad input is one `error:` line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from export_runs import lift_jax_logits, make_run, merged_model
from peft import PeftModel
from safetensors.numpy import load_file
from tiny_models import VOCAB, load_reference, tiny_configs
from transformers import AutoModelForCausalLM

from lift_jax.export import ExportError, export_run
from lift_jax.export.__main__ import main
from lift_jax.export.gguf_lora import gguf_tensor_name, interleave_rope_rows, llama_cpp_arch
from lift_jax.lora import LoRAConfig
from lift_jax.models import load
from lift_jax.models.bundled import smollm2_gguf
from lift_jax.models.weight_files import read_gguf

FAMILIES = list(tiny_configs())
LORA = LoRAConfig(rank=4, alpha=12.0, targets="all-linear")
ARCHS = {"llama3": "llama", "llama_tied": "llama", "gemma2": "gemma2", "gemma3": "gemma3", "qwen2": "qwen2",
         "qwen3": "qwen3"}


def _ids() -> np.ndarray:
    return np.random.RandomState(0).randint(6, VOCAB, (2, 12))


def _transformers_logits(directory: Path, ids: np.ndarray) -> np.ndarray:
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_directory_loads_in_transformers_with_lift_jax_merged_logits(tiny_checkpoints, tmp_path, family):
    run = make_run(tiny_checkpoints[family], tmp_path / "run", LORA, b_scale=0.1)
    out = export_run(run, "merged", tmp_path / "merged")
    written = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= written
    assert (out / "generation_config.json").read_text() == (
        tiny_checkpoints[family] / "generation_config.json").read_text()  # stop ids and sampling defaults kept
    ours = lift_jax_logits(merged_model(run), _ids())
    theirs = _transformers_logits(out, _ids())
    base = _transformers_logits(tiny_checkpoints[family], _ids())
    assert np.abs(theirs - base).max() > 0.1  # the merged adapter really changes the model
    assert np.abs(ours - theirs).max() <= 1e-4


def test_bfloat16_merge_is_the_float32_merge_rounded(tiny_checkpoints, tmp_path):
    run = make_run(tiny_checkpoints["qwen2"], tmp_path / "run", LORA, b_scale=0.1)
    f32 = load_file(export_run(run, "merged", tmp_path / "f32") / "model.safetensors")
    bf16 = load_file(export_run(run, "merged", tmp_path / "bf16", dtype="bfloat16") / "model.safetensors")
    assert sorted(f32) == sorted(bf16) and len(f32) == 1 + 3 * 12 + 1  # embed, 3 x (7 linear + 3 bias + 2 norms), norm
    for name in f32:
        assert bf16[name].dtype.name == "bfloat16"
        np.testing.assert_array_equal(bf16[name], f32[name].astype(bf16[name].dtype))
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"


def test_peft_reexport_loads_in_peft_with_lift_jax_merged_logits(tiny_checkpoints, tmp_path):
    lora = LoRAConfig(rank=3, alpha=5.0, targets=("q_proj", "k_proj", "down_proj"))
    run = make_run(tiny_checkpoints["gemma2"], tmp_path / "run", lora, b_scale=0.2)
    out = export_run(run, "peft", tmp_path / "peft")
    written = json.loads((out / "adapter_config.json").read_text())
    assert written == json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert written["target_modules"] == ["down_proj", "k_proj", "q_proj"] and written["r"] == 3
    original, exported = load_file(run / "adapter" / "adapter_model.safetensors"), load_file(
        out / "adapter_model.safetensors"
    )
    assert sorted(original) == sorted(exported) and len(exported) == 3 * 3 * 2
    peft_model = PeftModel.from_pretrained(load_reference(tiny_checkpoints["gemma2"]), out).eval()
    with torch.no_grad():
        theirs = peft_model(torch.tensor(_ids())).logits.numpy()
    assert np.abs(lift_jax_logits(merged_model(run), _ids()) - theirs).max() <= 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_gguf_lora_has_llama_cpp_metadata_names_shapes_and_row_order(tiny_checkpoints, tmp_path, family):
    run = make_run(tiny_checkpoints[family], tmp_path / "run", LORA, b_scale=0.1)
    path = export_run(run, "gguf-lora", tmp_path / "doc.gguf")
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["general.architecture"].contents() == ARCHS[family]
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 12.0
    spec = load(tiny_checkpoints[family]).spec
    gguf_names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                  "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    tensors = {t.name: t for t in reader.tensors}
    expected = {f"blk.{i}.{gguf_names[m]}.weight.lora_{ab}" for i in range(spec.num_layers) for m in spec.family.linears
                for ab in "ab"}
    assert set(tensors) == expected
    peft = load_file(run / "adapter" / "adapter_model.safetensors")
    heads = {"q_proj": spec.num_heads, "k_proj": spec.num_kv_heads}
    for i in range(spec.num_layers):
        for module in spec.family.linears:
            block = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            prefix = f"base_model.model.model.layers.{i}.{block}.{module}"
            a, b = peft[f"{prefix}.lora_A.weight"], peft[f"{prefix}.lora_B.weight"]
            ga, gb = tensors[f"blk.{i}.{gguf_names[module]}.weight.lora_a"], tensors[
                f"blk.{i}.{gguf_names[module]}.weight.lora_b"]
            # llama.cpp's loader: base ne = [in, out]; lora_a ne = [in, rank], lora_b ne = [rank, out]; float32.
            assert list(ga.shape) == [a.shape[1], 4] and list(gb.shape) == [4, b.shape[0]]
            assert ga.tensor_type == gb.tensor_type == gguf.GGMLQuantizationType.F32
            np.testing.assert_array_equal(np.asarray(ga.data).reshape(a.shape), a)
            if ARCHS[family] == "llama" and module in heads:
                b = interleave_rope_rows(b, heads[module])
            np.testing.assert_array_equal(np.asarray(gb.data).reshape(b.shape), b)


def test_rope_interleave_is_the_one_llama_cpp_applied_to_the_bundled_base():
    """SmolLM2's GGUF holds q/k as llama.cpp's converter wrote them; lift_jax's loader restores HF's order. The
    interleave applied to lora_b must map the restored rows back onto the stored ones."""
    path = smollm2_gguf()
    reader = gguf.GGUFReader(path)
    stored = {t.name: t for t in reader.tensors if t.name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight")}
    n_heads = int(reader.fields["llama.attention.head_count"].contents())
    n_kv = int(reader.fields["llama.attention.head_count_kv"].contents())
    restored = {}
    for name, w in read_gguf(path, n_heads, n_kv):
        if name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"):
            restored[name.split(".")[-2]] = w
            if len(restored) == 2:
                break
    for module, heads in (("q_proj", n_heads), ("k_proj", n_kv)):
        t = stored[f"blk.0.attn_{module[0]}.weight"]
        raw = gguf.quants.dequantize(t.data, t.tensor_type).reshape(restored[module].shape)
        assert not np.array_equal(raw, restored[module])  # the order differs, so this test can fail
        np.testing.assert_array_equal(interleave_rope_rows(restored[module], heads), raw)


def test_a_family_or_module_llama_cpp_cannot_express_is_an_export_error():
    with pytest.raises(ExportError, match="model_type 'mistral' has no llama.cpp LoRA mapping"):
        llama_cpp_arch("mistral")
    arch = llama_cpp_arch("qwen3")
    with pytest.raises(ExportError, match="no tensor for LoRA module layers.0.mlp.shared_expert"):
        gguf_tensor_name(gguf.get_tensor_name_map(arch, 2), "qwen3", "layers.0.mlp.shared_expert")


def _cli_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()  # a progress bar may precede the error (\r-separated)
    assert [line for line in err if line.startswith("error:")] == err[-1:]
    return err[-1]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial" in p.name)


def test_missing_run_is_one_error_line(capsys, tmp_path):
    message = _cli_error(capsys, ["--run", str(tmp_path / "nope"), "--format", "gguf-lora", "--out",
                                  str(tmp_path / "a.gguf")])
    assert "does not exist" in message and "absorb run" in message
    assert not (tmp_path / "a.gguf").exists() and not _leftovers(tmp_path)


def test_run_without_adapter_is_one_error_line(capsys, tmp_path, tiny_checkpoints):
    run = make_run(tiny_checkpoints["llama3"], tmp_path / "run", LORA, b_scale=0.1)
    for f in (run / "adapter").iterdir():
        f.unlink()
    for fmt in ("gguf-lora", "merged", "peft"):
        message = _cli_error(capsys, ["--run", str(run), "--format", fmt, "--out", str(tmp_path / "out")])
        assert "has no adapter" in message and "rerun the same absorb command" in message
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)


def test_unwritable_or_occupied_output_is_one_error_line(capsys, tmp_path, tiny_checkpoints):
    run = make_run(tiny_checkpoints["qwen3"], tmp_path / "run", LORA, b_scale=0.1)
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    message = _cli_error(capsys, ["--run", str(run), "--format", "gguf-lora", "--out", str(blocker / "x.gguf")])
    assert message.startswith(f"error: cannot write --out {blocker / 'x.gguf'}")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep me")
    message = _cli_error(capsys, ["--run", str(run), "--format", "merged", "--out", str(occupied)])
    assert "is a directory that is not empty" in message
    assert blocker.read_text() == "keep me" and [p.name for p in occupied.iterdir()] == ["mine.txt"]
    assert not _leftovers(tmp_path)


def test_a_failure_mid_export_leaves_nothing(capsys, tmp_path, tiny_checkpoints):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_checkpoints["gemma3"], base)
    run = make_run(base, tmp_path / "run", LORA, b_scale=0.1)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # fails after some tensors merged
    message = _cli_error(capsys, ["--run", str(run), "--format", "merged", "--out", str(tmp_path / "merged")])
    assert "is truncated at tensor" in message
    assert not (tmp_path / "merged").exists() and not _leftovers(tmp_path)


def test_cli_writes_each_format_and_prints_its_path(capsys, tmp_path, tiny_checkpoints):
    run = make_run(tiny_checkpoints["llama_tied"], tmp_path / "run", LORA, b_scale=0.1)
    for fmt, out in (("gguf-lora", tmp_path / "x" / "doc.gguf"), ("peft", tmp_path / "p"), ("merged", tmp_path / "m")):
        main(["--run", str(run), "--format", fmt, "--out", str(out)])
        assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
        assert out.exists() and not _leftovers(out.parent)


def test_a_symlinked_or_current_directory_out_and_a_tokenizerless_base(capsys, tmp_path, tiny_checkpoints,
                                                                      monkeypatch):
    import shutil

    run = make_run(tiny_checkpoints["qwen3"], tmp_path / "run", LORA, b_scale=0.1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    main(["--run", str(run), "--format", "peft", "--out", str(tmp_path / "link")])  # written through the link
    assert (tmp_path / "link").is_symlink() and (tmp_path / "empty" / "adapter_config.json").exists()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    message = _cli_error(capsys, ["--run", str(run), "--format", "merged", "--out", "."])
    assert message == f"error: --out {work} is the current directory; pick a new or empty folder elsewhere"
    base = tmp_path / "weights_only"
    shutil.copytree(tiny_checkpoints["qwen3"], base)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (base / name).unlink()
    run = make_run(base, tmp_path / "run2", LORA, b_scale=0.1)
    message = _cli_error(capsys, ["--run", str(run), "--format", "merged", "--out", str(tmp_path / "m")])
    assert message == f"error: {base} has no tokenizer files; copy the base model's tokenizer files there"
    assert not (tmp_path / "m").exists() and not _leftovers(tmp_path)
