"""Who takes an action: the names the audit trail records.

Every state-changing service function takes an `actor` string:

- `cli:<os user>` — a command typed in a shell (`cli_actor()`);
- `user:<staff email>` — a staff user signed in to the console;
- `schedule` — the scheduler in `newsletter serve` (scheduled sends, recurring rules);
- `worker` — a sending worker (pausing a send that cannot work, finishing one);
- `webhook:<provider>` / `bounces` — delivery feedback from a provider or the bounce mailbox;
- `page` — a subscriber acting on the public pages (nothing more: never their address);
- `demo` — `newsletter demo`.
"""

from __future__ import annotations

import getpass

SCHEDULE = "schedule"
WORKER = "worker"
PAGE = "page"
DEMO = "demo"
BOUNCES = "bounces"


def cli_actor() -> str:
    """`cli:` and the operating-system user who typed the command."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        name = "unknown"
    return f"cli:{name}"


def staff_actor(email: str) -> str:
    return f"user:{email}"


def webhook_actor(provider: str) -> str:
    return f"webhook:{provider}"
