"""Resumable result store: `predictions.jsonl` (one line per question and method) and the summary tables.

A record holds at least `id`, `method`, `question`, `prediction` and `answers` (gold list); optional fields
include `error` (the item failed and is retried on the next run), `judge` (bool verdict), `category`
(LooGLE LongQA type, scored per category), `in_window` (the answer passage lies inside the truncated-ICL
window: scored inside / outside) and timings. Reruns append; the last line per (id, method) wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lift_jax.durable import append_jsonl, open_append, read_jsonl, write_atomic
from lift_jax.errors import CorruptFileError
from lift_jax.eval.metrics import Scorer, aggregate, by_category

PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
REQUIRED_FIELDS = ("id", "method", "question", "prediction", "answers")

Key = tuple[str, str]


def record_key(record: Mapping[str, Any]) -> Key:
    """The (id, method) pair a record answers."""
    return str(record["id"]), str(record["method"])


def is_error(record: Mapping[str, Any]) -> bool:
    """True when the record stores a failure instead of a usable prediction."""
    return bool(record.get("error"))


class PredictionStore:
    """Append-only `output_dir/predictions.jsonl`, fsynced per record; a torn last line is ignored."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / PREDICTIONS_FILE

    def records(self) -> list[dict[str, Any]]:
        """The latest record per (id, method), in the order the keys first appeared."""
        if not self.path.exists():
            return []
        latest: dict[Key, dict[str, Any]] = {}
        for number, record in read_jsonl(self.path):  # a write torn by a kill is skipped
            if record is None:
                raise CorruptFileError(f"{self.path}:{number}: corrupt record (not a torn last line)")
            latest[record_key(record)] = record
        return list(latest.values())

    def done_keys(self) -> set[Key]:
        """(id, method) pairs that finished without error; errored items are not done and get retried."""
        return {record_key(r) for r in self.records() if not is_error(r)}

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record durably (flush + fsync) after dropping any torn tail a killed run left."""
        missing = [field for field in REQUIRED_FIELDS if field not in record]
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}: {dict(record)!r}")
        with open_append(self.path, lock=False) as f:  # also cuts off a torn tail a killed run left
            append_jsonl(f, [dict(record)])


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}


WINDOW_PARTS = {True: "inside", False: "outside"}  # the in_window split of a summary entry


def _scores(record: Mapping[str, Any], metrics: Mapping[str, Scorer]) -> dict[str, float]:
    scores = {name: scorer(str(record["prediction"]), list(record["answers"])) for name, scorer in metrics.items()}
    verdict = record.get("judge")
    if verdict is not None:
        if not isinstance(verdict, bool):
            raise CorruptFileError(f"judge verdict of {record_key(record)} must be a bool, got {verdict!r}")
        scores["judge"] = float(verdict)
    return scores


def _entry(rows: list[dict[str, float]], errors: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"n": len(rows), "errors": errors}
    entry.update(_rounded({k: v for k, v in aggregate(rows).items() if k != "n"}))
    judged = sum("judge" in row for row in rows)
    if judged:
        entry["judge_n"] = judged
    return entry


def summarize(
    records: Iterable[Mapping[str, Any]], metrics: Mapping[str, Scorer]
) -> dict[str, dict[str, Any]]:
    """Per method: `n` scored items, `errors`, each metric and the `judge` score in percent (2 decimals).

    `judge_n` counts the items with a verdict; records with a `category` add a `categories` breakdown; records
    with a bool `in_window` add an `in_window` split: {"inside": entry, "outside": entry}, each entry with its
    own `n`, `errors` and metrics over the records of that side of the truncated-ICL window.
    """
    groups: dict[str, dict[str, Any]] = {}
    for record in records:
        group = groups.setdefault(str(record["method"]), {"rows": [], "errors": 0, "categories": [], "window": {}})
        side = record.get("in_window")
        part = None
        if isinstance(side, bool):
            part = group["window"].setdefault(WINDOW_PARTS[side], {"rows": [], "errors": 0})
        if is_error(record):
            group["errors"] += 1
            if part is not None:
                part["errors"] += 1
            continue
        scores = _scores(record, metrics)
        group["rows"].append(scores)
        if part is not None:
            part["rows"].append(scores)
        if record.get("category") is not None:
            group["categories"].append((str(record["category"]), scores))

    summary: dict[str, dict[str, Any]] = {}
    for method, group in groups.items():
        entry = _entry(group["rows"], group["errors"])
        if group["categories"]:
            entry["categories"] = {c: _rounded(s) for c, s in by_category(group["categories"]).items()}
        if group["window"]:
            parts = {name: group["window"].get(name, {"rows": [], "errors": 0}) for name in WINDOW_PARTS.values()}
            entry["in_window"] = {name: _entry(part["rows"], part["errors"]) for name, part in parts.items()}
        summary[method] = entry
    return summary


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k, v in row.items() if not isinstance(v, dict)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[Any]], numeric_from: int) -> list[str]:
    """Markdown table lines; columns from `numeric_from` on are right-aligned, floats with 2 decimals."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def summary_markdown(summary: Mapping[str, Mapping[str, Any]], title: str = "Results") -> str:
    """The summary as markdown: one row per method, then a per-category table when there are categories and a
    table of all / inside / outside the truncated-ICL window when there is an in_window split."""
    columns = _columns(summary.values())
    rows = [[method, *(entry.get(c) for c in columns)] for method, entry in summary.items()]
    lines = [f"# {title}", "", *markdown_table(["method", *columns], rows, numeric_from=1)]
    per_category = {m: e["categories"] for m, e in summary.items() if "categories" in e}
    if per_category:
        cat_columns = _columns(s for cats in per_category.values() for s in cats.values())
        cat_rows = [
            [method, category, *(scores.get(c) for c in cat_columns)]
            for method, cats in per_category.items()
            for category, scores in cats.items()
        ]
        header = ["method", "category", *cat_columns]
        lines += ["", "## Per category", "", *markdown_table(header, cat_rows, numeric_from=2)]
    split = {m: e for m, e in summary.items() if "in_window" in e}
    if split:
        part_columns = _columns(part for e in split.values() for part in e["in_window"].values())
        part_rows = [
            [method, name, *(part.get(c) for c in part_columns)]
            for method, e in split.items()
            for name, part in {"all": e, **e["in_window"]}.items()
        ]
        header = ["method", "answer passage", *part_columns]
        lines += ["", "## Inside / outside the truncated-ICL window", "",
                  *markdown_table(header, part_rows, numeric_from=2)]
    return "\n".join(lines) + "\n"


def write_summary(
    output_dir: str | Path, summary: Mapping[str, Mapping[str, Any]], title: str = "Results", appendix: str = ""
) -> tuple[Path, Path]:
    """Write `summary.json` and `summary.md` (plus `appendix`, more markdown) atomically; returns both paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output_dir / SUMMARY_JSON, output_dir / SUMMARY_MD
    write_atomic(json_path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    markdown = summary_markdown(summary, title)
    write_atomic(md_path, markdown + ("\n" + appendix if appendix else ""))
    return json_path, md_path
