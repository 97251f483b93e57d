"""`python -m lift_jax.export --run DIR --format gguf-lora|merged|peft --out PATH [--dtype float32|bfloat16]`.

Prints the written path; bad input is one `error:` line and exit code 2, with nothing written at PATH.
"""

from __future__ import annotations

import argparse
import sys

from lift_jax.cli import fail


def _parser() -> argparse.ArgumentParser:
    from lift_jax.export import FORMATS, MERGED_DTYPES

    parser = argparse.ArgumentParser(
        prog="python -m lift_jax.export", description="Export an absorb run's LIFTed model for other runtimes."
    )
    parser.add_argument("--run", required=True, help="the absorb run directory (its --config.output_dir)")
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="gguf-lora: llama.cpp LoRA adapter file; merged: Hugging Face directory; peft: PEFT adapter directory",
    )
    parser.add_argument("--out", required=True, help="the file (gguf-lora) or directory (merged, peft) to write")
    parser.add_argument(
        "--dtype", choices=tuple(MERGED_DTYPES), default="float32", help="weights dtype of --format merged"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    from lift_jax.errors import LiftError
    from lift_jax.export import export_run

    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        out = export_run(args.run, args.format, args.out, args.dtype, progress=True)
    except LiftError as e:
        fail(str(e))
    print(out)


if __name__ == "__main__":
    main()
