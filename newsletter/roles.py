"""Who may do what: the one table of staff roles and their permissions.

A role is a set of permission names. The console's routes check a permission
next to each route (`@requires("campaigns.approve")` in newsletter.admin), its
pages read the same table to hide what a role cannot do, and the lifecycle's
actions name the permission they need ("campaigns.edit", "campaigns.approve",
"campaigns.send"). Each role includes everything the role before it may do.
"""

from __future__ import annotations

from types import MappingProxyType

from newsletter.errors import InputError

# Reading every page (subscribers' addresses masked for viewers; see `can_see_addresses`).
READ = frozenset({"console.read"})
# Items, drafts, previews and test sends.
EDIT = frozenset(
    {"items.edit", "items.import", "campaigns.edit", "campaigns.test", "audience.read_addresses"}
)
# Approving and everything that sends or stops a send.
PUBLISH = frozenset({"campaigns.approve", "campaigns.send"})
# The audience, the people, and the installation itself.
ADMINISTER = frozenset(
    {
        "audience.edit",
        "audience.import",
        "suppression.edit",
        "erasure",
        "users.manage",
        "settings.test",
    }
)

ROLES: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "viewer": READ,
        "editor": READ | EDIT,
        "publisher": READ | EDIT | PUBLISH,
        "admin": READ | EDIT | PUBLISH | ADMINISTER,
    }
)
ROLE_NAMES: tuple[str, ...] = tuple(ROLES)
PERMISSIONS: frozenset[str] = frozenset().union(*ROLES.values())


def check_role(role: str) -> str:
    """A role name as given, or an InputError listing the roles."""
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLE_NAMES)}")
    return role


def allows(role: str, permission: str) -> bool:
    """Whether `role` has `permission` (an unknown role has none)."""
    if permission not in PERMISSIONS:
        # A typo in a route's permission must fail loudly, not deny everyone quietly.
        raise KeyError(f"unknown permission {permission!r}")
    return permission in ROLES.get(role, frozenset())


def can_see_addresses(role: str) -> bool:
    """Viewers see subscribers' addresses masked; every other role sees them whole."""
    return allows(role, "audience.read_addresses")
