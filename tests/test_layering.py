"""Library and command lines stay apart: nothing in lift_jax/, benchmarks/ or the notebook imports a command-line
module (lift_jax.absorb, lift_jax.ask, lift_jax.synth.__main__, lift_jax.export.__main__, lift_jax.eval.cli, the
eval entry points); they import the library (lift_jax.absorbing, lift_jax.answering, ...) instead. The one
exception: an eval entry point (niah, squad, loogle) imports the command line they share, lift_jax.eval.cli."""

from __future__ import annotations

import ast
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lift_jax"
SHARED_EVAL_CLI = "lift_jax.eval.cli"


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
    found = {SHARED_EVAL_CLI}
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
            "lift_jax.eval.cli", "lift_jax.eval.niah", "lift_jax.eval.squad", "lift_jax.eval.loogle"} <= clis
    assert "lift_jax.absorbing" not in clis and "lift_jax.answering" not in clis


def test_nothing_in_the_package_benchmarks_or_notebook_imports_a_command_line_module():
    clis = _command_line_modules()
    offenders = []
    for label, anchor, source in _sources():
        name = anchor.removesuffix(".__init__")
        for line, module in _imported(ast.parse(source), anchor):
            if module not in clis or module == name:
                continue
            if module == SHARED_EVAL_CLI and name in clis:
                continue  # an eval entry point uses the command line the three share
            offenders.append(f"{label}:{line} imports {module}")
    assert not offenders, "a library module imports a command line; import the library instead:\n" + "\n".join(
        offenders)


def test_the_walk_catches_every_import_form():
    tree = ast.parse("import lift_jax.ask as a\nfrom lift_jax import absorb\nfrom lift_jax.synth import __main__\n"
                     "from . import cli\n")
    imported = {module for _, module in _imported(tree, "lift_jax.eval.harness")}
    assert {"lift_jax.ask", "lift_jax.absorb", "lift_jax.synth.__main__", "lift_jax.eval.cli"} <= imported
    assert ("lift_jax.eval.cli" in {m for _, m in _imported(ast.parse("from .eval import cli"), "lift_jax.__init__")})
