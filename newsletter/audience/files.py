"""Files that hold addresses (exports, reject files): readable by their owner only.

A leaked list can put a person in prison, so such a file is created with mode
0600 and written under a temporary name, then renamed: a reader never sees a
half-written file, and a failed run leaves none behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def open_private(path: Path, *, encoding: str = "utf-8") -> IO[str]:
    """Open a new text file that only its owner may read (an existing one is replaced)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return open(descriptor, "w", encoding=encoding, newline="")


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


@contextmanager
def private_output(path: str | Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Write a private file all at once: under a temporary name, renamed on success."""
    target = Path(path)
    temporary = partial_path(target)
    handle = open_private(temporary, encoding=encoding)
    try:
        with handle:
            yield handle
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, target)
