"""The comparison table over evaluation folders: scores recomputed from predictions.jsonl, per document."""

from __future__ import annotations

import json

import pytest

from lift_jax.errors import LiftError
from lift_jax.eval.compare import comparison_rows, main


def _write(folder, records):
    folder.mkdir()
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _record(doc, method, prediction, in_window, **timing):
    return {"id": f"{doc}-{prediction}", "doc_id": doc, "method": method, "prediction": prediction,
            "answers": ["Denver Broncos"], "in_window": in_window, **timing}


def test_rows_recompute_the_split_scores_of_one_document(tmp_path, capsys):
    timing = {"absorb_s": 10.0, "answer_s": 1.0, "pairs_generated": 3, "pairs_reused": 4}
    _write(tmp_path / "a", [
        _record("A", "lift", "the Denver Broncos won", True, **timing),  # "the" dropped: P 2/3, R 1, F1 80
        _record("A", "lift", "nobody", False, **timing),
        _record("B", "lift", "Denver Broncos", False, **timing),  # another document: left out
    ])
    _write(tmp_path / "b", [_record("A", "icl", "Denver Broncos", False)])
    rows = comparison_rows([tmp_path / "a", tmp_path / "b"], "A")
    assert rows == [
        ["a", "lift", 2, 40.0, 80.0, 0.0, 50.0, 0.0, 10.0, 7],
        ["b", "icl", 1, 100.0, None, 100.0, 100.0, 100.0, None, None],  # no question inside
    ]
    main(["--doc", "A", str(tmp_path / "a")])
    assert "| a | lift | 2 | 40.00 | 80.00 | 0.00 | 50.00 | 0.00 | 10.00 | 7 |" in capsys.readouterr().out


def test_shared_documents_keeps_only_the_documents_every_folder_has(tmp_path):
    _write(tmp_path / "long", [_record("A", "lift", "nobody", False), _record("B", "lift", "Denver Broncos", False)])
    _write(tmp_path / "short", [_record("B", "lift", "the Denver Broncos won", False)])
    both = [tmp_path / "long", tmp_path / "short"]
    assert [row[:4] for row in comparison_rows(both, None)] == [["long", "lift", 2, 50.0], ["short", "lift", 1, 80.0]]
    assert [row[:4] for row in comparison_rows(both, None, shared=True)] == [
        ["long", "lift", 1, 100.0], ["short", "lift", 1, 80.0]]
    _write(tmp_path / "other", [_record("C", "lift", "x", False)])
    with pytest.raises(LiftError, match="--shared-documents: the folders have no document in common"):
        comparison_rows([tmp_path / "long", tmp_path / "other"], None, shared=True)


def test_a_folder_without_predictions_or_records_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path)])
    assert e.value.code == 2
    assert capsys.readouterr().err == (f"error: {tmp_path}/predictions.jsonl does not exist; give evaluation output "
                                       "folders (they hold predictions.jsonl)\n")
    _write(tmp_path / "a", [_record("A", "lift", "x", True)])
    with pytest.raises(SystemExit):
        main(["--doc", "Z", str(tmp_path / "a")])
    assert capsys.readouterr().err == "error: no records of document 'Z' in the given folders\n"
