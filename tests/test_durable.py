"""Crash-safe files: atomic replacement and JSONL appends that survive a torn tail."""

from __future__ import annotations

import json

import pytest

from lift_jax.durable import FileBusyError, atomic_path, open_append, read_jsonl, write_json_atomic
from lift_jax.runio import MetricsLog


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "timing.json"
    write_json_atomic(path, {"b": 1, "a": "é"})
    assert path.read_text() == '{\n  "a": "\\u00e9",\n  "b": 1\n}'  # sorted, indented, ASCII (as before)
    with pytest.raises(RuntimeError, match="killed"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"a": "é", "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["timing.json"]


def test_a_torn_metrics_line_is_skipped_and_cut_off_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n{"step": 2}\n{"ste')  # a kill in the middle of step 3's line
    assert [rec for _, rec in read_jsonl(path)] == [{"step": 1}, {"step": 2}]
    log = MetricsLog(path)
    log.write({"step": 3})
    log.close()
    assert path.read_text().splitlines() == ['{"step": 1}', '{"step": 2}', '{"step": 3}']


def test_an_unfinished_group_is_cut_back_to_its_last_complete_record(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_bytes(b'{"k": 1}\n{"k": 1, "status": "ok"}\n{"k": 2}\n{"k": 2}\n')
    with open_append(path, complete=lambda rec: "status" in rec):
        with pytest.raises(FileBusyError, match=f"another process is writing {path}; use another"):
            open_append(path, hint="use another")
        assert path.read_bytes() == b'{"k": 1}\n{"k": 1, "status": "ok"}\n'
