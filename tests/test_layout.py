"""The package's shape: imports at the top, packages that load lazily, no file outside."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"
# The folder of notes beside the repository, spelt in two parts so that this file does not
# name it itself.
OUTSIDE_NOTES = "../" + "shared"


def _function_imports() -> list[tuple[Path, int, str]]:
    """Each import of the package's own modules inside a function, with the comments that
    stand between the function's first line and the import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                if module and module.startswith("newsletter"):
                    above = lines[function.lineno - 1 : node.lineno - 1]
                    comments = " ".join(x.strip() for x in above if x.strip().startswith("#"))
                    found.append((path, node.lineno, comments))
    return found


def test_no_import_inside_a_function_dodges_a_cycle() -> None:
    """An import inside a function is allowed for start-up time only, and says so."""
    unexplained = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path, line, comments in _function_imports()
        if "start-up" not in comments
    ]
    assert unexplained == []


def test_importing_one_module_loads_only_what_it_needs() -> None:
    """Package front doors are lazy: the audience query does not pull in the composer, the
    pages or the dispatcher."""
    probe = (
        "import json, sys, newsletter.audience.resolve, newsletter.dispatch.ledger; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('newsletter'))))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    for heavy in ("newsletter.message", "newsletter.render", "newsletter.web.app",
                  "newsletter.dispatch.engine", "newsletter.audience.imports"):  # fmt: skip
        assert heavy not in loaded


def test_no_project_file_points_outside_the_project() -> None:
    """Docstrings and comments cite modules, tests and the README, never notes that are not
    part of the project."""
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "DESIGN.md" in path.read_text(encoding="utf-8")
        or OUTSIDE_NOTES in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
