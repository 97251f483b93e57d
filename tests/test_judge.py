"""The LLM judge: verdict parsing, caching, retries against the fault-injecting server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synth_fault_server import CLIENT_TIMEOUT_S, FaultServer

from lift_jax.judge import JUDGE_PROMPT, JudgeItem, JudgeUnavailable, judge, judge_config, parse_verdict


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("True", True),
        ("true.", True),
        ("**False**", False),
        ("Answer: True", True),
        ("'False'", False),
        ("False\n\nThe prediction names a different year.", False),
        ("The two answers are the same, so: True", True),
        ("I cannot decide.", None),
        ("True or False?", None),
        ("Verdict: false", False),
        ("", None),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def test_prompt_is_the_papers() -> None:
    text = JUDGE_PROMPT.format(question="Q?", groundtruth="G", prediction="P")
    assert text.startswith("Given one question, there is a groundtruth and a predict_answer.")
    assert text.endswith("Question: Q?\ngroundtruth = G\npredict_answer = P")


def config(server: FaultServer):
    cfg = judge_config()
    cfg.base_url, cfg.model, cfg.api_key_env = server.base_url, "judge", ""
    cfg.timeout_s, cfg.max_retries, cfg.concurrency = CLIENT_TIMEOUT_S, 6, 8
    cfg.backoff_s, cfg.backoff_max_s = 0.01, 0.05
    return cfg


def test_judging_with_faults_caches_verdicts_and_unparsed_replies(tmp_path: Path) -> None:
    replies = {
        f"q{i}": r for i, r in enumerate(["True", "true.", "**False**", "Answer: True", "no idea"] * 4)
    }
    replies["q-down"] = "False"
    items = [JudgeItem(f"q{i}", f"gold {i}", f"pred {i}") for i in range(20)] + [
        JudgeItem("q-down", "g", "p")
    ]
    cache = tmp_path / "judge.jsonl"
    with FaultServer(fault_rate=0.3, seed=3, replies=replies, always_fail=("q-down",)) as server:
        verdicts = judge(items, config(server), cache)
        assert sum(server.faults.values()) > 3
        expected = [True, True, False, True, None] * 4
        assert [v.verdict for v in verdicts[:20]] == expected
        assert [v.status for v in verdicts[:5]] == ["ok", "ok", "ok", "ok", "unparsed"]
        assert verdicts[4].reply == "no idea"
        assert verdicts[20].status == "failed" and "gave up" in verdicts[20].error
        assert all(server.successes[f"q{i}"] == 1 for i in range(20))
        assert all(p["temperature"] == 0.0 for p in server.payloads)

        server.reset()
        server.always_fail, server.fault_rate = (), 0.0
        again = judge(items, config(server), cache)
        assert dict(server.requests) == {"q-down": 1}  # only the failed one is asked again
        assert all(v.cached for v in again[:20]) and again[20].status == "ok"
        assert [v.verdict for v in again[:20]] == expected

        server.reset()
        other = config(server)
        other.model = "another-judge"
        judge(items[:2], other, cache)  # a different judge model is a different key
        assert sum(server.requests.values()) == 2
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    assert (
        len(records) == 23
        and {"question", "groundtruth", "prediction", "model", "verdict"} <= records[0].keys()
    )


def test_a_torn_cache_line_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "judge.jsonl"
    with FaultServer(replies={"q": "True"}) as server:
        judge([JudgeItem("q", "g", "p")], config(server), cache)
        with open(cache, "a") as f:
            f.write('{"key": "torn", "verd')
        server.reset()
        assert judge([JudgeItem("q", "g", "p")], config(server), cache)[0].cached
        judge([JudgeItem("q2", "g", "p")], config(server), cache)
    assert len(cache.read_text().splitlines()) == 2 and cache.read_text().endswith("\n")


def test_an_unusable_judge_is_one_clear_error(tmp_path: Path) -> None:
    with FaultServer(required_key="secret") as server:
        with pytest.raises(JudgeUnavailable, match="HTTP 401"):
            judge([JudgeItem("q", "g", "p")], config(server), tmp_path / "j.jsonl")
        url_config = config(server)
    url_config.max_retries = 0
    with pytest.raises(JudgeUnavailable, match="is not usable"):
        judge([JudgeItem("q", "g", "p")], url_config, tmp_path / "j.jsonl")
