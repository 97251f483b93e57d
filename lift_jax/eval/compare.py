"""One table over several SQuAD evaluation output folders: the same scores as each folder's summary, recomputed
from its predictions.jsonl (optionally for one document, or for the documents every folder has), one row per
(folder, method), split by the truncated-ICL window. For comparing runs that differ in one setting (e.g.
docs/results/squad_window_levers).

    python -m lift_jax.eval.compare [--doc DOC_ID | --shared-documents] DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lift_jax.errors import LiftError, MissingInputError
from lift_jax.eval.metrics import SQUAD_METRICS
from lift_jax.eval.records import PredictionStore, markdown_table, summarize
from lift_jax.eval.report import timing_summary

HEADER = ["run", "method", "n", "F1 all", "F1 inside", "F1 outside", "gold in answer all (%)",
          "gold in answer outside (%)", "absorb s / doc", "pairs (generated + reused)"]


def read_predictions(folder: Path, doc_id: str | None) -> list[dict[str, Any]]:
    """The records of `folder`/predictions.jsonl as its summary counts them (the latest per question and
    method), those of `doc_id` only when given."""
    store = PredictionStore(folder)
    if not store.path.is_file():
        raise MissingInputError(f"{store.path} does not exist; give evaluation output folders (they hold "
                                "predictions.jsonl)")
    return [r for r in store.records() if doc_id is None or str(r.get("doc_id")) == doc_id]


def _pairs(times: dict[str, Any]) -> int | None:
    if "pairs_generated" not in times:
        return None
    return times["pairs_generated"] + times.get("pairs_reused", 0)


def comparison_rows(folders: Sequence[Path], doc_id: str | None, shared: bool = False) -> list[list[Any]]:
    """One row per (folder, method) with the columns of HEADER; with `shared`, over the documents that every
    folder has records of (a run on the first N documents against a longer one)."""
    per_folder = [read_predictions(folder, doc_id) for folder in folders]
    if shared:
        common = set.intersection(*({str(r.get("doc_id")) for r in records} for records in per_folder))
        if not common and all(per_folder):
            raise LiftError("--shared-documents: the folders have no document in common (compare runs on the "
                            "same data file, or drop the flag)")
        per_folder = [[r for r in records if str(r.get("doc_id")) in common] for records in per_folder]
    rows = []
    for folder, records in zip(folders, per_folder, strict=True):
        scores, timing = summarize(records, SQUAD_METRICS), timing_summary(records)
        for method, entry in scores.items():
            sides = entry.get("in_window", {})
            inside, outside = sides.get("inside", {}), sides.get("outside", {})
            times = timing.get(method, {})
            rows.append([folder.name, method, entry["n"], entry["f1"], inside.get("f1"), outside.get("f1"),
                         entry["contains_answer"], outside.get("contains_answer"), times.get("absorb_s_per_doc"),
                         _pairs(times)])
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the comparison table (markdown) of the given evaluation folders."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="evaluation output folders")
    parser.add_argument("--doc", default=None, help="only this document's records (its doc_id)")
    parser.add_argument("--shared-documents", action="store_true",
                        help="only the records of documents that every folder has")
    args = parser.parse_args(argv)
    try:
        rows = comparison_rows(args.folders, args.doc, args.shared_documents)
    except LiftError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if not rows:
        print(f"error: no records{f' of document {args.doc!r}' if args.doc else ''} in the given folders",
              file=sys.stderr)
        raise SystemExit(2)
    print("\n".join(markdown_table(HEADER, rows, numeric_from=2)))


if __name__ == "__main__":
    main()
