"""Markdown files uploaded through the console, laid out as the folder the importer reads.

Staff upload several .md files at once (or a whole folder, where the browser
can pick one), or one .zip of a folder. Either becomes a private temporary
folder that `newsletter.items.import_source` imports exactly as
`newsletter items import FOLDER` would, with the same report.

What an upload may not do: name a path outside the folder (an absolute path,
a drive letter, a `..` part, in a zip member or in an uploaded file's name),
hold more than MAX_FILES Markdown files, or unpack to more than MAX_TOTAL_BYTES
or a file to more than MAX_FILE_BYTES (a small zip can expand a thousandfold).
Files that are not Markdown are skipped and listed, as the folder import skips them.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from newsletter.errors import InputError
from newsletter.items.markdown_folder import SUFFIXES

MAX_FILES = 1000
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 50 * 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 64 * 1024


@dataclass
class Unpacked:
    """What an upload put in the folder."""

    name: str  # the folder's name for people: the zip's, or the picked folder's
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    total_bytes: int = 0


def safe_relative(name: str) -> PurePosixPath:
    """An uploaded name as a path inside the folder; InputError when it points outside."""
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if text.startswith("/") or _DRIVE.match(text) or ".." in path.parts or "\0" in text:
        raise InputError(f"{name!r} points outside the folder; upload the folder's own files")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise InputError(f"{name!r} is not a file name")
    return PurePosixPath(*parts)


def unpack_upload(uploads: Iterable[tuple[str, IO[bytes]]], folder: Path) -> Unpacked:
    """Write uploaded Markdown files, or the Markdown files of one uploaded .zip, into
    `folder` (empty, private). InputError says which file broke which rule."""
    given = list(uploads)
    if not given:
        raise InputError("choose Markdown files, a folder, or a .zip of a folder")
    zips = [name for name, _ in given if name.lower().endswith(".zip")]
    if zips and len(given) > 1:
        raise InputError("upload one .zip on its own, or Markdown files without a .zip")
    if zips:
        name, stream = given[0]
        return _unzip(name, stream, folder)
    paths = [safe_relative(name) for name, _ in given]
    # A picked folder's files all start with its name; it names the upload.
    tops = {path.parts[0] for path in paths if len(path.parts) > 1}
    unpacked = Unpacked(name=tops.pop() if len(tops) == 1 and all(
        len(p.parts) > 1 for p in paths) else "markdown files")  # fmt: skip
    for path, (_, stream) in zip(paths, given, strict=True):
        _write(unpacked, folder, path, stream, str(path))
    _check_found(unpacked)
    return unpacked


def _unzip(name: str, stream: IO[bytes], folder: Path) -> Unpacked:
    unpacked = Unpacked(name=PurePosixPath(name.replace("\\", "/")).stem or "upload")
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"{name}: not a readable .zip file") from None
    with archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            path = safe_relative(member.filename)
            if member.file_size > MAX_FILE_BYTES and path.suffix.lower() in SUFFIXES:
                raise InputError(_too_big(f"{name}: {member.filename}"))
            try:
                with archive.open(member) as content:
                    _write(unpacked, folder, path, content, f"{name}: {member.filename}")
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise InputError(f"{name}: {member.filename}: cannot be unpacked ({exc})") from None
    _check_found(unpacked)
    return unpacked


def _write(unpacked: Unpacked, folder: Path, path: PurePosixPath, stream: IO[bytes],
           where: str) -> None:  # fmt: skip
    if path.suffix.lower() not in SUFFIXES or any(p.startswith(".") for p in path.parts):
        unpacked.skipped.append(str(path))
        return
    unpacked.files += 1
    if unpacked.files > MAX_FILES:
        raise InputError(f"more than {MAX_FILES} Markdown files; import them in parts")
    target = folder.joinpath(*path.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    # Counted as it is written, never trusting a declared size: a zip member's header
    # can lie about how large it unpacks.
    try:
        out = target.open("xb")
    except FileExistsError:
        raise InputError(f"{where}: two files of this name; upload each once") from None
    with out:
        while chunk := stream.read(_CHUNK):
            written += len(chunk)
            unpacked.total_bytes += len(chunk)
            if written > MAX_FILE_BYTES:
                raise InputError(_too_big(where))
            if unpacked.total_bytes > MAX_TOTAL_BYTES:
                raise InputError(
                    f"the files unpack to more than {MAX_TOTAL_BYTES // (1024 * 1024)} MB; "
                    "import them in parts"
                )
            out.write(chunk)


def _too_big(where: str) -> str:
    return f"{where} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; is it Markdown?"


def _check_found(unpacked: Unpacked) -> None:
    if not unpacked.files:
        skipped = ", ".join(unpacked.skipped[:5]) or "nothing"
        raise InputError(f"no Markdown (.md) file in the upload (it held {skipped})")
