"""Sources shaped to hang or crash the import: each is rejected in one line, in bounded time,
and the rest of the source is imported."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.errors import InputError
from newsletter.items.feed import fetch
from newsletter.items.markdown_folder import parse_markdown_folder

FRONT = "---\ntitle: A report\ndate: 2019-06-03\n---\n"
GOOD = FRONT + "The network met in Vienna.\n"

ALIAS_BOMB = (
    "---\n"
    "title: Laughs\n"
    "date: 2019-06-03\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "tags: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "---\nBody.\n"
)

HOSTILE = {
    "deep-list.md": FRONT + "".join("    " * i + "- x\n" for i in range(600)),
    "deep-list-2.md": FRONT + "".join("  " * i + "- x\n" for i in range(600)),
    "brackets.md": FRONT + "[" * 30_000 + "\n",
    "quotes.md": FRONT + ">" * 5000 + " x\n",
    "aliases.md": ALIAS_BOMB,
    "deep-yaml.md": "---\ntitle: " + "[" * 3000 + "]" * 3000 + "\n---\nBody.\n",
    "huge.md": FRONT + ("A sentence of an item. " * 40_000),
}


@pytest.mark.timeout(60)
def test_hostile_markdown_files_are_rejected_in_one_line_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    (tmp_path / "good.md").write_text(GOOD)
    for name, text in HOSTILE.items():
        (tmp_path / name).write_text(text)
    started = time.monotonic()
    result = parse_markdown_folder(tmp_path, label="posts")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"{elapsed:.1f}s"
    assert [item.source_id for item in result.items] == ["good.md"]
    errors = {p.where.split(":")[0]: p.message for p in result.problems if p.severity == "error"}
    assert set(errors) == {f"posts/{name}" for name in HOSTILE}
    for message in errors.values():
        assert "\n" not in message and len(message) < 300, message
        assert message.endswith("the file was not imported")
    assert "aliases (*name) are not allowed" in errors["posts/aliases.md"]
    assert "lol" not in " ".join(str(p) for p in result.problems), "nothing expanded is quoted"


def test_a_long_value_in_a_warning_is_quoted_short(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\ntitle: T\ndate: 2019-06-03\nkind: " + "x" * 5000 + "\ntags: {a: 1}\n---\nBody.\n"
    )
    result = parse_markdown_folder(tmp_path, label="posts")
    assert len(result.items) == 1
    assert result.problems and all(len(str(p)) < 300 for p in result.problems)


def test_a_folder_import_with_failures_exits_1_with_a_summary(run_cli, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "good.md").write_text(GOOD)
    (folder / "aliases.md").write_text(ALIAS_BOMB)
    result = run_cli("items", "import", str(folder))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"failed: 1 not imported from {folder}")
    (folder / "aliases.md").unlink()
    assert run_cli("items", "import", str(folder)).returncode == 0


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """A server that sends its answer one byte every 0.2 s: each read is quick, the whole
    never ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                answer += b"Content-Length: 100000\r\n\r\n" + b"<" * 1000
                for byte in answer:
                    if stop.is_set():
                        break
                    try:
                        conn.sendall(bytes([byte]) if byte != 10 else b"\n")
                    except OSError:
                        break
                    time.sleep(0.02 if byte == 10 else 0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    stop.set()
    listener.close()


@pytest.mark.timeout(30)
def test_a_feed_that_drips_its_bytes_meets_an_overall_deadline(dripping_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(InputError, match=r"did not arrive within 1\.5 seconds"):
        fetch(dripping_server, timeout=5, deadline=1.5)
    assert time.monotonic() - started < 3
