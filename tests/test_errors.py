"""One error hierarchy: every lift_jax exception derives from LiftError, and the CLIs turn LiftError (only) into
one `error:` line with exit code 2, including generator and cache failures that happen during a run."""

from __future__ import annotations

import fcntl
import importlib
import inspect
import pkgutil
import re

import pytest
from fake_absorb import tiny_config
from synth_fault_server import FaultServer

import lift_jax
from lift_jax import absorb
from lift_jax.errors import LiftError


def _package_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(lift_jax.__path__, "lift_jax."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("lift_jax"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_of_the_package_derives_from_lift_error():
    classes = _package_exceptions()
    assert len(classes) >= 15  # the walk really imported the package (13 classes existed before LiftError)
    assert not [name for name, cls in classes.items() if not issubclass(cls, LiftError)]
    # the builtin bases callers catch today are kept
    from lift_jax.cli import UsageError
    from lift_jax.synth.cache import CacheError

    assert issubclass(UsageError, ValueError) and issubclass(CacheError, RuntimeError)


def _absorb_args(tmp_path, checkpoint, server: FaultServer) -> list[str]:
    cfg = tiny_config(checkpoint, tmp_path / "run")
    return [
        f"--config.model_path={cfg.model_path}", f"--config.document={cfg.document}",
        f"--config.output_dir={cfg.output_dir}", "--config.lora.rank=4", "--config.train.max_length=64",
        "--config.mesh.data=1", "--config.ask.measure_first_token=false", "--config.generator.kind=openai",
        f"--config.generator.base_url={server.base_url}", "--config.generator.model=fake",
        "--config.generator.max_retries=0", "--config.generator.qa_per_sentence=2",
    ]


def _error_line(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        absorb.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def test_a_generator_failing_during_the_run_is_one_error_line_naming_the_sentence(
    tiny_checkpoints, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FaultServer(required_key="secret") as server:  # the model list answers; every generation is 401
        line = _error_line(capsys, _absorb_args(tmp_path, tiny_checkpoints["llama3"], server))
    assert re.match(r"error: the QA generator failed: sentence [01] \('Item (one|two) weighs", line), line
    assert "HTTP 401" in line


def test_a_qa_cache_held_by_another_process_is_one_error_line_naming_the_file(tiny_checkpoints, tmp_path, capsys):
    cache = tmp_path / "run" / "qa_cache" / "qa_cache.jsonl"
    cache.parent.mkdir(parents=True)
    with FaultServer() as server, open(cache, "a") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # what a second run on the same directory holds
        line = _error_line(capsys, _absorb_args(tmp_path, tiny_checkpoints["llama3"], server))
    assert line.startswith("error: the QA generator failed:") and f"another process is writing {cache}" in line


def test_a_bug_is_not_turned_into_an_error_line(tiny_checkpoints, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(absorb, "absorb", broken)
    with pytest.raises(ValueError, match="a bug"):
        absorb.main(["--config.document=doc.txt"])


@pytest.mark.parametrize("name", ["missing.json", "a_directory"])
def test_an_eval_benchmark_path_that_is_no_file_is_one_error_line(tmp_path, capsys, name):
    from lift_jax.eval import squad

    (tmp_path / "a_directory").mkdir()
    data = tmp_path / name
    with pytest.raises(SystemExit) as exc:
        squad.main([f"--config.data={data}", f"--config.output_dir={tmp_path / 'out'}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data} ") and "set --config.data to a SQuAD JSON file" in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1
