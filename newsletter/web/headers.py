"""Security headers, set on every response the pages give.

- Content-Security-Policy: pages load only their own stylesheet, run no
  script at all, post forms only to themselves, and cannot be framed. The
  embeddable subscribe form may be framed by the sites in
  `web.embed_frame_ancestors`; the view-in-browser page of an edition allows
  the inline styles and remote images an email is made of, and nothing else.
- Referrer-Policy: no-referrer, because a page's address may hold a signed
  link token that must not reach the sites its links point to.
- X-Frame-Options: DENY for browsers that predate frame-ancestors (left out on
  the embeddable form, where CSP alone decides).
- X-Content-Type-Options: nosniff.
- Cache-Control: no-store on every page that shows a form or a subscriber's
  data, so that a shared computer's cache keeps nothing personal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from werkzeug.wrappers import Response

PAGE_CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# An edition as email clients see it: inline CSS (premailer's output) and images from
# the organisation's site, but still no script, no form and no framing.
EDITION_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class HeaderPolicy:
    """Which variant of the headers a response gets; views choose with `mark()`."""

    csp: str = PAGE_CSP
    frameable_by: tuple[str, ...] = ()
    cacheable: bool = False


DEFAULT_POLICY = HeaderPolicy()
_ATTRIBUTE = "_newsletter_header_policy"


def mark(response: Response, policy: HeaderPolicy) -> Response:
    """Give one response a policy other than the default (embeddable, edition, cacheable)."""
    setattr(response, _ATTRIBUTE, policy)
    return response


def embeddable(ancestors: Iterable[str]) -> HeaderPolicy:
    return HeaderPolicy(frameable_by=tuple(ancestors))


def apply(response: Response) -> Response:
    policy: HeaderPolicy = getattr(response, _ATTRIBUTE, DEFAULT_POLICY)
    csp = policy.csp
    if policy.frameable_by:
        csp = csp.replace(
            "frame-ancestors 'none'", "frame-ancestors 'self' " + " ".join(policy.frameable_by)
        )
    else:
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = csp
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not policy.cacheable:
        response.headers["Cache-Control"] = "no-store"
    return response
