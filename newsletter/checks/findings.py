"""The result every check gives: one finding per problem, in one line."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    # "error": delivery would break (rejected, spam-foldered, no one-click unsubscribe);
    # "warning": the message suffers but goes.
    severity: str
    # A stable name for scripts and tests: "size", "image-alt", "http-link", …
    code: str
    # One line for people: what is wrong, where, and what to do.
    message: str
    # The language of the edition it was found in; empty for domain findings.
    language: str = ""

    def line(self) -> str:
        where = f"[{self.language}] " if self.language else ""
        return f"{self.severity}: {where}{self.message}"
