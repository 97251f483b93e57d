"""Wall time and QA-generation counts per document and method, beside the scores of records.summarize.

Every record carries its document's `doc_id` and the timings of the (document, method) run that produced it:
`absorb_s` (absorb wall time, generation + training; absent for icl), `answer_s` (answering all of the
document's questions with that method), `steps`, `pairs_generated` and `pairs_reused` (LIFT methods),
`teacher_computed` and `teacher_reused` (lift+cd: teacher answers computed, or found in the teacher cache).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lift_jax.eval.metrics import Scorer
from lift_jax.eval.records import is_error, markdown_table, summarize, write_summary

COUNT_FIELDS = ("pairs_generated", "pairs_reused", "teacher_computed", "teacher_reused")
TIMING_FIELDS = ("absorb_s", "answer_s", "steps", *COUNT_FIELDS)


def per_document(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(doc_id, method) -> the timing fields of the document's first answered record."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if is_error(record) or "doc_id" not in record:
            continue
        key = (str(record["doc_id"]), str(record["method"]))
        if key not in rows:
            rows[key] = {f: record[f] for f in TIMING_FIELDS if record.get(f) is not None}
    return rows


def timing_summary(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: `docs`, mean `absorb_s_per_doc` and `answer_s_per_doc`, totals of the COUNT_FIELDS it has."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for (_, method), row in per_document(records).items():
        groups.setdefault(method, []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for method, rows in groups.items():
        entry: dict[str, Any] = {"docs": len(rows)}
        for field in ("absorb_s", "answer_s"):
            values = [row[field] for row in rows if field in row]
            if values:
                entry[f"{field}_per_doc"] = round(sum(values) / len(values), 2)
        for field in COUNT_FIELDS:
            values = [row[field] for row in rows if field in row]
            if values:
                entry[field] = sum(values)
        out[method] = entry
    return out


def timing_markdown(records: Iterable[Mapping[str, Any]]) -> str:
    """A markdown table of the wall time per document and method ('' when there is none)."""
    rows = per_document(records)
    if not rows:
        return ""
    header = ["document", "method", "absorb s", "answer s", "steps", "pairs generated", "pairs reused",
              "teacher computed", "teacher reused"]
    cells = [[doc_id, method, *(row.get(f) for f in TIMING_FIELDS)] for (doc_id, method), row in rows.items()]
    return "\n".join(["## Wall time per document", "", *markdown_table(header, cells, numeric_from=2)]) + "\n"


def write_report(
    output_dir: Path,
    records: list[dict[str, Any]],
    metrics: Mapping[str, Scorer],
    title: str,
    context_tokens: int | None = None,
) -> dict[str, dict[str, Any]]:
    """summary.json / summary.md: scores per method (records.summarize) plus the timing summary, and the
    per-document wall-time table in the markdown. `context_tokens` (the truncated-ICL window, ask.context_tokens;
    0 = the model's) is stated in every method's entry. Returns the summary."""
    summary = summarize(records, metrics)
    for method, timing in timing_summary(records).items():
        summary.setdefault(method, {"n": 0, "errors": 0}).update(timing)
    if context_tokens is not None:
        for entry in summary.values():
            entry["context_tokens"] = context_tokens
    write_summary(output_dir, summary, title, appendix=timing_markdown(records))
    return summary
