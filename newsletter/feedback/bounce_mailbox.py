"""The bounce mailbox of SMTP senders: a Maildir folder or an IMAP folder.

Both offer the same four things: the messages not yet read, and for one of
them `mark_read` (kept, and not offered again), `delete`, or nothing at all
(left unread, offered again next time). Reading never changes a message:
Maildir files are read in place, IMAP bodies are fetched with BODY.PEEK.
"""

from __future__ import annotations

import imaplib
import mailbox
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from newsletter.errors import ConfigError, OperationFailed


class BounceMailbox(Protocol):
    def describe(self) -> str: ...

    def unread(self) -> Iterator[tuple[str, bytes]]: ...

    def mark_read(self, key: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def close(self) -> None: ...


class MaildirBox:
    """A Maildir: unread means in new/, or in cur/ without the S (seen) flag."""

    def __init__(self, path: Path) -> None:
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise ConfigError(f"{path} is not a Maildir folder (it needs new/ and cur/)")
        self.path = path
        self._box = mailbox.Maildir(path, factory=None, create=False)

    def describe(self) -> str:
        return f"maildir {self.path}"

    def unread(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self._box.keys()):
            try:
                message = self._box.get_message(key)
            except (KeyError, FileNotFoundError):
                continue  # taken away meanwhile by another reader
            if message.get_subdir() == "new" or "S" not in message.get_flags():
                yield key, self._box.get_bytes(key)

    def mark_read(self, key: str) -> None:
        message = self._box.get_message(key)
        message.set_subdir("cur")
        message.add_flag("S")
        self._box[key] = message

    def delete(self, key: str) -> None:
        self._box.discard(key)

    def close(self) -> None:
        self._box.close()


class ImapBox:
    """An IMAP folder: unread means without \\Seen; deletions are expunged on close."""

    def __init__(self, url: str, password: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ConfigError(
                f"feedback.mailbox_imap_url {url!r}: use imaps://USER@HOST/FOLDER "
                "(or imap://USER@HOST/FOLDER?tls=starttls)"
            )
        params = dict(parse_qsl(parts.query))
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.where = f"{parts.scheme}://{parts.hostname}/{self.folder}"
        context = ssl.create_default_context()
        if params.get("verify") == "0":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            if parts.scheme == "imaps":
                self._imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    parts.hostname, parts.port or 993, ssl_context=context, timeout=timeout
                )
            else:
                self._imap = imaplib.IMAP4(parts.hostname, parts.port or 143, timeout=timeout)
                if params.get("tls", "starttls") == "starttls":
                    self._imap.starttls(ssl_context=context)
            if parts.username:
                self._imap.login(unquote(parts.username), password)
            status, _ = self._imap.select(_quoted(self.folder))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise OperationFailed(f"cannot open the bounce mailbox {self.where}: {exc}") from None
        if status != "OK":
            raise OperationFailed(f"the bounce mailbox has no folder {self.folder!r}")
        self._deleted = False

    def describe(self) -> str:
        return f"imap {self.where}"

    def unread(self) -> Iterator[tuple[str, bytes]]:
        status, data = self._imap.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise OperationFailed(f"{self.where}: SEARCH failed: {data!r}")
        for uid in (data[0] or b"").split():
            status, fetched = self._imap.uid("FETCH", uid.decode("ascii"), "(BODY.PEEK[])")
            for item in fetched or []:
                if status == "OK" and isinstance(item, tuple):
                    yield uid.decode(), item[1]

    def mark_read(self, key: str) -> None:
        self._imap.uid("STORE", key, "+FLAGS", "(\\Seen)")

    def delete(self, key: str) -> None:
        self._imap.uid("STORE", key, "+FLAGS", "(\\Seen \\Deleted)")
        self._deleted = True

    def close(self) -> None:
        try:
            if self._deleted:
                self._imap.expunge()
            self._imap.close()
            self._imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
