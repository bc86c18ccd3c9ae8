"""Package front doors that load a submodule only when one of its names is used.

A package's `__init__` names its front door (`from newsletter.dispatch import
send_campaign`) without importing every submodule up front: importing one
module of a package (say `newsletter.audience.resolve`) then loads that module
alone, not the whole package and everything it imports in turn. That keeps
start-up fast and keeps packages from importing each other in circles.

Each package writes

    __getattr__, __dir__ = lazy_exports(__name__, {"send_campaign": "service", ...})

(PEP 562), with the same names under `if TYPE_CHECKING:` for type checkers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: name → the submodule (relative) holding it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
