"""Commands: preview a campaign as one subscriber would get it."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json, echo_record
from newsletter.errors import InputError
from newsletter.notices import build_preview


@click.command(
    "preview",
    epilog="Example: newsletter preview 3 --out preview/ --subscriber ana@example.org\n\n"
    "newsletter preview 3 --out preview-ru/ --language ru",
)
@click.argument("campaign_id", type=int)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write campaign-ID.html, .txt and .eml into (created if missing).",
)
@click.option(
    "--subscriber",
    "email",
    metavar="EMAIL",
    help="Render for this subscriber (default: the campaign's first recipient, else a "
    "made-up sample person).",
)
@click.option(
    "--language",
    metavar="LANG",
    help="Render the edition in this language (default: the subscriber's, if the config "
    "offers it, else the campaign's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the paths as JSON.")
@pass_context
def preview(
    ctx: AppContext,
    campaign_id: int,
    out_dir: Path,
    email: str | None,
    language: str | None,
    as_json: bool,
) -> None:
    """Write a campaign's HTML, text and complete .eml message for one subscriber."""
    result = build_preview(ctx.app, campaign_id, email, language)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create the folder: {exc.strerror}") from None
    stem = out_dir / f"campaign-{campaign_id}"
    paths = {
        "html": stem.with_suffix(".html"),
        "text": stem.with_suffix(".txt"),
        "eml": stem.with_suffix(".eml"),
    }
    contents = {
        "html": result.html.encode("utf-8"),
        "text": result.text.encode("utf-8"),
        "eml": result.eml,
    }
    _write_all({paths[kind]: data for kind, data in contents.items()})
    record = {
        "id": campaign_id,
        "subject": result.subject,
        "language": result.language,
        "subscriber": result.recipient.email,
        **{kind: str(path) for kind, path in paths.items()},
    }
    if as_json:
        echo_json(record)
    else:
        echo_record(record)


def _write_all(files: dict[Path, bytes]) -> None:
    """Write every file or none: each goes to a temporary name first, then all are renamed."""
    temporary = {path: path.with_name(f".{path.name}.tmp") for path in files}
    try:
        for path, data in files.items():
            temporary[path].write_bytes(data)
        for path, temp in temporary.items():
            temp.replace(path)
    except OSError as exc:
        raise InputError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    finally:
        for temp in temporary.values():
            temp.unlink(missing_ok=True)
