"""Library and command lines stay apart: nothing in lift_jax/, benchmarks/ or the notebook imports a command-line
module (lift_jax.absorb, lift_jax.ask, lift_jax.synth.__main__, lift_jax.export.__main__, the eval entry points
niah, squad and loogle), not even another command line; they import the library (lift_jax.absorbing,
lift_jax.answering, lift_jax.eval.harness, ...) instead."""

from __future__ import annotations

import ast
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lift_jax"


def _module_name(path: Path, keep_init: bool = False) -> str:
    """The dotted name of a file under the repository (with `.__init__` kept: the anchor of relative imports)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__" and not keep_init:
        parts.pop()
    return ".".join(parts)


def _is_command_line(path: Path, tree: ast.Module) -> bool:
    """A `python -m` entry point: a package's __main__.py or a module with an `if __name__ == "__main__":`."""
    if path.name == "__main__.py":
        return True
    return any(
        isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        for node in tree.body
    )


def _command_line_modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if _is_command_line(path, ast.parse(path.read_text())):
            found.add(_module_name(path))
    return found


def _imported(tree: ast.AST, anchor: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `tree` (relative ones resolved against the importing file's dotted
    name `anchor`), `from a import b` also as a.b (b may be a module)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = anchor.split(".")[: -node.level]
                base = ".".join(package + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _sources() -> list[tuple[str, str, str]]:
    """(label for the message, dotted name, source) of every package module, benchmark and notebook cell."""
    sources = [(str(p.relative_to(REPO)), _module_name(p, keep_init=True), p.read_text())
               for p in sorted(PACKAGE.rglob("*.py"))]
    sources += [(str(p.relative_to(REPO)), _module_name(p), p.read_text())
                for p in sorted((REPO / "benchmarks").glob("*.py"))]
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for number, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                code = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in lines)
                sources.append((f"{notebook.relative_to(REPO)} cell {number}", "notebooks.cell", code))
    return sources


def test_command_line_modules_are_found():
    clis = _command_line_modules()
    assert {"lift_jax.absorb", "lift_jax.ask", "lift_jax.synth.__main__", "lift_jax.export.__main__",
            "lift_jax.eval.niah", "lift_jax.eval.squad", "lift_jax.eval.loogle"} <= clis
    libraries = {"lift_jax.absorbing", "lift_jax.answering", "lift_jax.cli", "lift_jax.eval.harness",
                 "lift_jax.eval.squad_benchmark", "lift_jax.eval.niah_benchmark", "lift_jax.eval.loogle_benchmark"}
    assert not libraries & clis


def _offenders(sources: list[tuple[str, str, str]], clis: set[str]) -> list[str]:
    """`label:line imports module` for every import of a command-line module in `sources` but a module's own."""
    offenders = []
    for label, anchor, source in sources:
        name = anchor.removesuffix(".__init__")
        offenders += [f"{label}:{line} imports {module}" for line, module in _imported(ast.parse(source), anchor)
                      if module in clis and module != name]
    return offenders


def test_nothing_in_the_package_benchmarks_or_notebook_imports_a_command_line_module():
    offenders = _offenders(_sources(), _command_line_modules())
    assert not offenders, "a library module imports a command line; import the library instead:\n" + "\n".join(
        offenders)


def test_a_planted_import_of_a_command_line_is_reported():
    clis = _command_line_modules()
    planted = [
        ("lift_jax/eval/harness.py", "lift_jax.eval.harness", "from lift_jax.eval.squad import main\n"),
        ("lift_jax/eval/niah.py", "lift_jax.eval.niah", "x = 1\nfrom . import loogle\n"),  # a CLI importing a CLI
        ("benchmarks/ttft.py", "benchmarks.ttft", "import lift_jax.ask\n"),
        ("lift_jax/eval/squad.py", "lift_jax.eval.squad", "from lift_jax.eval.harness import run_from_args\n"),
    ]
    assert _offenders(planted, clis) == ["lift_jax/eval/harness.py:1 imports lift_jax.eval.squad",
                                         "lift_jax/eval/niah.py:2 imports lift_jax.eval.loogle",
                                         "benchmarks/ttft.py:1 imports lift_jax.ask"]


def test_the_walk_catches_every_import_form():
    tree = ast.parse("import lift_jax.ask as a\nfrom lift_jax import absorb\nfrom lift_jax.synth import __main__\n"
                     "from . import squad\n")
    imported = {module for _, module in _imported(tree, "lift_jax.eval.harness")}
    assert {"lift_jax.ask", "lift_jax.absorb", "lift_jax.synth.__main__", "lift_jax.eval.squad"} <= imported
    assert "lift_jax.eval.niah" in {m for _, m in _imported(ast.parse("from .eval import niah"), "lift_jax.__init__")}
