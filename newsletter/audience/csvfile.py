"""Reading CSV files as people really export them, one record at a time.

- Encoding: UTF-8 with or without a byte-order mark, UTF-16 or UTF-32 with one,
  or whatever `--encoding` declares (Windows-1252 from older Excel, for
  example). Undeclared bytes that are not UTF-8 are an error naming the line
  and suggesting --encoding, never a silent guess.
- Delimiter: comma, semicolon or tab, whichever the header line uses most
  (outside quotes); Excel's "sep=;" first line is honoured.
- Quoted fields may hold delimiters, doubled quotes and line breaks; each record
  knows the line it starts on, for messages and the reject file.

The file is streamed: memory does not depend on its length.

Files we write (exports, reject files) are opened in spreadsheets, which run a
cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula: a subscriber
who signs up as ``=HYPERLINK(…)`` would run it on a staff computer. Such a
cell is written with a leading apostrophe (`spreadsheet_cell`), which
spreadsheets show as text; reading a file, that apostrophe is dropped again,
so an export still imports as it is.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from newsletter.errors import InputError

DELIMITERS = (",", ";", "\t")
# First characters that make a spreadsheet read a cell as a formula (tab and carriage
# return too: some programs skip them and read what follows).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
# A field longer than this is surely a broken quote swallowing the rest of the file.
MAX_FIELD = 1_000_000

_starts_with_apostrophe = operator.methodcaller("startswith", "'")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class Record:
    line: int  # the line of the file the record starts on (the header is line 1)
    fields: list[str]


def detect_encoding(head: bytes, declared: str | None, *, where: str) -> str:
    """The codec to read with, from the byte-order mark or the declaration."""
    bom = next((codec for mark, codec in _BOMS if head.startswith(mark)), None)
    if declared:
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            raise InputError(
                f"unknown encoding {declared!r} (for example utf-8, utf-16, cp1252)"
            ) from None
        if bom:
            family = bom.removesuffix("-sig")
            if not name.startswith(family):
                raise InputError(
                    f"{where}: the file starts with a {family.upper()} byte-order mark, "
                    f"but --encoding {declared} was given; leave --encoding out"
                )
            return bom
        return "utf-8-sig" if name == "utf-8" else name
    if bom:
        return bom
    if b"\x00" in head[:4096]:
        raise InputError(
            f"{where}: looks like UTF-16 without a byte-order mark; "
            "give --encoding utf-16-le (or utf-16-be)"
        )
    return "utf-8-sig"


def _is_line_splittable(encoding: str) -> bool:
    # In every encoding but UTF-16/32 a newline is the byte 0x0A and never part of another
    # character, so the bytes can be split into lines before decoding, which lets a
    # decoding error name its line.
    return not encoding.replace("_", "-").startswith(("utf-16", "utf-32"))


def _decoded_lines(binary: BinaryIO, encoding: str, where: str) -> Iterator[str]:
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    for number, raw in enumerate(binary, 1):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex().upper()
            if codec == "utf-8":
                raise InputError(
                    f"{where}: line {number} is not UTF-8 (byte 0x{bad} at column "
                    f"{exc.start + 1}); if the file was saved by Excel or another Windows "
                    "program, give --encoding cp1252 (or the encoding it was saved in)"
                ) from None
            raise InputError(
                f"{where}: line {number} is not valid {encoding} (byte 0x{bad} at column "
                f"{exc.start + 1}); check --encoding"
            ) from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield text


def _text_lines(binary: BinaryIO, encoding: str, where: str) -> Iterator[str]:
    # newline="" keeps line endings as they are, for the csv module to read.
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    number = 0
    try:
        for number, line in enumerate(text, 1):
            yield line.removeprefix("\ufeff") if number == 1 else line
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where}: after line {number}: not valid {encoding} ({exc.reason}); check --encoding"
        ) from None
    finally:
        text.detach()


def sniff_delimiter(line: str) -> str:
    """The delimiter the header line uses most, counted outside quotes; comma on a tie."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvFile:
    """An open CSV file: its encoding, delimiter, header and records.

    Use as a context manager; `records()` yields the data records in order.
    """

    def __init__(self, path: str | Path, *, encoding: str | None = None) -> None:
        self.path = Path(path)
        self.where = str(path)
        self.declared = encoding
        self.encoding = ""
        self.delimiter = ","
        self.header: list[str] = []
        self.header_line = 1
        self._binary: BinaryIO | None = None
        self._reader: Iterator[list[str]] | None = None
        self._csv: csv.Reader | None = None  # type: ignore[name-defined]
        self._line_offset = 0

    def __enter__(self) -> CsvFile:
        if not self.path.exists():
            raise InputError(f"{self.where}: file not found")
        if not self.path.is_file():
            raise InputError(f"{self.where}: not a file")
        try:
            self._binary = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"{self.where}: cannot read: {exc.strerror}") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._binary is not None:
            self._binary.close()
            self._binary = None

    def _open(self) -> None:
        assert self._binary is not None
        head = self._binary.read(4096)
        self._binary.seek(0)
        self.encoding = detect_encoding(head, self.declared, where=self.where)
        if _is_line_splittable(self.encoding):
            lines = _decoded_lines(self._binary, self.encoding, self.where)
        else:
            lines = _text_lines(self._binary, self.encoding, self.where)

        first = next(lines, None)
        while first is not None and not first.strip():
            # Blank lines before the header are skipped, but still counted.
            self._line_offset += 1
            first = next(lines, None)
        if first is None:
            raise InputError(f"{self.where}: the file is empty (expected a header line)")
        if first.strip().lower().startswith("sep=") and len(first.strip()) == 5:
            # Excel's hint line names the delimiter; the header follows it.
            self.delimiter = first.strip()[4]
            self._line_offset += 1
            first = next(lines, None)
            if first is None:
                raise InputError(f"{self.where}: the file has no header line after 'sep='")
        else:
            self.delimiter = sniff_delimiter(first)
        self.header_line = self._line_offset + 1

        csv.field_size_limit(MAX_FIELD)
        self._csv = csv.reader(itertools.chain([first], lines), delimiter=self.delimiter)
        header = self._next_row()
        if header is None:
            raise InputError(f"{self.where}: the file is empty (expected a header line)")
        self.header = [name.strip() for name in header]

    def _next_row(self) -> list[str] | None:
        assert self._csv is not None
        try:
            return next(self._csv, None)
        except csv.Error as exc:
            line = self._csv.line_num + self._line_offset
            raise InputError(f"{self.where}: line {line}: cannot read CSV: {exc}") from None

    def records(self) -> Iterator[Record]:
        """The data records with the line each starts on; blank and empty rows are skipped."""
        assert self._csv is not None
        while True:
            start = self._csv.line_num + self._line_offset + 1
            row = self._next_row()
            if row is None:
                return
            # map() over C methods: this runs for every row of files of a million rows.
            if not any(map(str.strip, row)):
                continue  # a blank line, or a spreadsheet's trailing row of empty cells
            if any(map(_starts_with_apostrophe, row)):
                row = [from_spreadsheet_cell(field) for field in row]
            yield Record(line=start, fields=row)

    def describe(self) -> str:
        """'UTF-8, semicolon-separated' for summaries."""
        encoding = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}.get(
            self.encoding, self.encoding
        )
        return f"{encoding}, {DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))}-separated"


def spreadsheet_cell(value: object) -> str:
    """A value as a cell no spreadsheet runs as a formula (see the module docstring)."""
    text = "" if value is None else str(value)
    # Apostrophes already in front of a formula get one more, so that reading drops
    # exactly the one added here.
    return "'" + text if text.lstrip("'").startswith(FORMULA_STARTS) else text


def from_spreadsheet_cell(text: str) -> str:
    """The value of a cell `spreadsheet_cell` wrote: its protecting apostrophe dropped."""
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS):
        return text[1:]
    return text
