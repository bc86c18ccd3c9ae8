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


# Public functions that may return a loose mapping, each for a reason. Everything else that
# the CLI, the pages, the console or --json read returns a dataclass with typed fields.
LOOSE_MAPPINGS = {
    # Column values by name, spread into a Subscription or set on one.
    "audience/consent.py:Consent.columns",
    # Segment rules are user data, stored as a JSON document.
    "audience/segment_rules.py:validate_rules",
    # A log record's extras: whatever fields each event carries.
    "logs.py:event_fields",
    # The approval snapshot is a JSON document stored in the campaign's row.
    "snapshot.py:freeze",
    # The --json document of an items import names its fields otherwise (id, looks_like).
    "items/store.py:ImportReport.as_dict",
    # Being rewritten for speed elsewhere: typed when that work lands.
    "audience/imports.py:ImportReport.as_dict",
    "dispatch/progress.py:Progress.as_dict",
}
LOOSE_RETURNS = {"dict[str, Any]", "list[dict[str, Any]]", "Iterator[dict[str, Any]]"}


def _loose_in(tree: ast.Module, where: str) -> list[str]:
    """Each public function or method of a module annotated to return a loose mapping."""
    found = []
    scopes: list[tuple[str, ast.AST]] = [("", tree)]
    while scopes:
        prefix, scope = scopes.pop()
        for node in ast.iter_child_nodes(scope):
            if isinstance(node, ast.ClassDef):
                scopes.append((f"{prefix}{node.name}.", node))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                public = not node.name.startswith("_")
                returns = ast.unparse(node.returns) if node.returns else ""
                if public and returns.replace("typing.", "") in LOOSE_RETURNS:
                    found.append(f"{where}:{prefix}{node.name}")
    return sorted(found)


def test_service_functions_return_typed_results_not_loose_mappings() -> None:
    """What the CLI, the pages and --json read has named, typed fields; a mapping is allowed
    only where the data is free-form by nature, and the allow-list says why."""
    found = {
        name
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
        for name in _loose_in(
            ast.parse(path.read_text(encoding="utf-8")), path.relative_to(PACKAGE).as_posix()
        )
    }
    assert sorted(found - LOOSE_MAPPINGS) == []
    # The allow-list holds no stale entry (a function since typed, renamed or gone).
    assert sorted(LOOSE_MAPPINGS - found) == []


def test_the_loose_mapping_check_finds_what_it_should() -> None:
    """The check reads methods, nested classes and multi-line signatures, and skips private
    helpers and typed mappings: over a sample, it names exactly the public loose ones."""
    sample = ast.parse(
        "class Report:\n"
        "    class Part:\n"
        "        def fields(self) -> dict[str, Any]: ...\n"
        "    def as_dict(self) -> dict[str, Any]: ...\n"
        "    def _private(self) -> dict[str, Any]: ...\n"
        "def rows(\n    app: Any,\n) -> list[dict[str, Any]]: ...\n"
        "def typed() -> dict[str, int]: ...\n"
        "async def stream() -> typing.Iterator[dict[str, Any]]: ...\n"
    )
    assert _loose_in(sample, "m.py") == [
        "m.py:Report.Part.fields", "m.py:Report.as_dict", "m.py:rows", "m.py:stream"
    ]  # fmt: skip
