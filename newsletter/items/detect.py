"""Which parser reads a source, and the stable name a source is stored under.

- an http(s) address is a feed;
- a folder is a folder of Markdown files;
- a file whose first non-blank character is ``<`` (after a byte-order mark), or
  whose name ends in .xml, .rss or .atom, is a feed;
- any other file is a plain-text news listing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from newsletter.errors import InputError

SourceType = Literal["listing", "markdown", "feed"]
FEED_SUFFIXES = (".xml", ".rss", ".atom")
_OTHER_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def source_type(source: str) -> SourceType:
    """The kind of a source by the rules above; InputError when it does not exist."""
    if is_url(source):
        return "feed"
    if _OTHER_SCHEME.match(source):
        raise InputError(f"{source}: only http:// and https:// addresses can be fetched")
    path = Path(source).expanduser()
    if path.is_dir():
        return "markdown"
    if not path.exists():
        raise InputError(f"{source}: no such file or folder")
    if not path.is_file():
        raise InputError(f"{source}: not a file or a folder")
    try:
        with path.open("rb") as handle:
            head = handle.read(1024)
    except OSError as exc:
        raise InputError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<") or path.suffix.lower() in FEED_SUFFIXES:
        return "feed"
    return "listing"


def source_key(source: str) -> str:
    """The name items of this source are stored under: the address, or the absolute path.

    The same file given as a relative path from another folder is the same source.
    """
    if is_url(source):
        return source.strip()
    return str(Path(source).expanduser().resolve())
