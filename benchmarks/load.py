"""Load time and peak host memory: lift_jax.models.load vs transformers.AutoModelForCausalLM.from_pretrained.

Each load runs in a fresh subprocess (so peak RSS is its own) on the same checkpoints, in the same run:
the bundled SmolLM2-135M GGUF and a safetensors copy of it written by transformers. Usage:

    python benchmarks/load.py [--repeats 2] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import RESULTS_DIR, save_results

_CHILD = r"""
import json, resource, sys, time
kind, path, gguf_file, dtype = sys.argv[1:5]
t0 = time.perf_counter()
if kind == "lift_jax":
    import jax
    from lift_jax.models import load
    model = load(path if not gguf_file else f"{path}/{gguf_file}", dtype=dtype)
    jax.block_until_ready(model.module.embed_tokens.weight.get_value())
else:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    kw = {"gguf_file": gguf_file} if gguf_file else {}
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kw)
    AutoTokenizer.from_pretrained(path, **kw)
seconds = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))
"""


def _measure(kind: str, path: Path, gguf_file: str, dtype: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(path), gguf_file, dtype],
        check=True,
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **_env()},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}


def _safetensors_copy(gguf: Path, directory: Path) -> Path:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    directory.mkdir(parents=True)
    tied = model.config.tie_word_embeddings
    state = model.state_dict()
    tensors = {k: v.contiguous() for k, v in state.items() if not (tied and k == "lm_head.weight")}
    # A GGUF-loaded model refuses save_pretrained, so write the tensors and config directly.
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    model.config.save_pretrained(directory)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(directory)
    return directory


def main() -> None:
    """Print a table of load time and peak RSS for both loaders on both checkpoint formats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where load.json goes")
    parser.add_argument("--convert-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from lift_jax.models.bundled import smollm2_gguf

    gguf = smollm2_gguf()
    if args.convert_to:
        _safetensors_copy(gguf, args.convert_to)
        return
    # Linux keeps ru_maxrss across fork+exec: this process stays small (no torch, no model) so each child's
    # peak is its own. The safetensors copy is written by a child for the same reason.
    with tempfile.TemporaryDirectory() as tmp:
        st_dir = Path(tmp) / "smollm2-safetensors"
        subprocess.run(
            [sys.executable, __file__, "--convert-to", str(st_dir)], check=True, capture_output=True
        )
        cases = [
            ("SmolLM2-135M GGUF Q4_1", gguf.parent, gguf.name),
            ("SmolLM2-135M safetensors f32", st_dir, ""),
        ]
        best = f"load s (best of {args.repeats})"
        columns = ["checkpoint", "loader", best, "peak RSS MB", "time ratio", "RSS ratio"]
        lines = ["| " + " | ".join(columns) + " |", "|---|---|---|---|---|---|"]
        print("\n".join(lines))
        measured = []
        for label, path, gguf_file in cases:
            rows = {}
            for kind in ("transformers", "lift_jax"):
                runs = [_measure(kind, path, gguf_file, args.dtype) for _ in range(args.repeats)]
                rows[kind] = {
                    "seconds": min(r["seconds"] for r in runs),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                }
            ref = rows["transformers"]
            measured.append({"checkpoint": label, **rows})
            for kind, r in rows.items():
                lines.append(
                    f"| {label} | {kind} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                    f"{r['seconds'] / ref['seconds']:.2f} | {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f} |"
                )
                print(lines[-1])
    save_results("load", {"args": vars(args), "rows": measured, "table": lines}, args.out)


if __name__ == "__main__":
    main()
