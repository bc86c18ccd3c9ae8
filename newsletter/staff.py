"""Staff users of the console: accounts, roles, passwords and sign-in.

    add_user(app, "ana@example.org", role="editor", password=…, actor=…)
    authenticate(app, email, password) -> StaffUserRecord | None

Passwords are kept only as argon2id hashes (argon2-cffi's defaults, which
follow RFC 9106's second recommended option); a hash made with older
parameters is replaced on the next successful sign-in. `authenticate` spends
the same work on an unknown address as on a known one, so timing does not
tell an attacker which addresses have accounts. Throttling repeated failures
is the console's job (newsletter.admin.throttle), not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter import audit
from newsletter.actors import staff_actor
from newsletter.app import Newsletter
from newsletter.audience.addresses import normalise_address
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.models import StaffUser, utcnow
from newsletter.roles import allows, check_role

# Long enough that guessing online, throttled, is hopeless; no other rule (NIST 800-63B).
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class StaffUserRecord:
    id: int
    email: str
    name: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    # Console sessions made under another generation are over (see end_sessions).
    session_generation: int = 0

    @property
    def actor(self) -> str:
        """How this person is named in the audit trail and on campaigns."""
        return staff_actor(self.email)


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


@cache
def _dummy_hash() -> str:
    # Verified against when the address is unknown, so both paths cost one argon2 run.
    return _hasher().hash("no account has this password")


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher().hash(password)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    return password


def _record(user: StaffUser) -> StaffUserRecord:
    return StaffUserRecord(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        session_generation=user.session_generation,
    )


def _key(email: str) -> str:
    return normalise_address(email).key


def _load(session: Session, email: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.email_key == _key(email)))
    if user is None:
        raise NotFound(f"no staff user {email!r} (see `newsletter users list`)")
    return user


def add_user(
    app: Newsletter, email: str, *, role: str, password: str, name: str = "", actor: str
) -> StaffUserRecord:
    """A new staff account; InputError when the address already has one."""
    address = normalise_address(email)
    check_role(role)
    hashed = hash_password(password)
    try:
        with app.session() as session:
            user = StaffUser(
                email=address.email,
                email_key=address.key,
                name=" ".join(name.split()),
                role=role,
                password_hash=hashed,
            )
            session.add(user)
            session.flush()
            _audit(session, actor, "user.add", user.id, f"role {role}")
            return _record(user)
    except IntegrityError:
        raise InputError(f"a staff user {address.email!r} already exists") from None


def list_users(app: Newsletter) -> list[StaffUserRecord]:
    with app.session() as session:
        return [_record(u) for u in session.scalars(select(StaffUser).order_by(StaffUser.id))]


def get_user(app: Newsletter, user_id: int) -> StaffUserRecord | None:
    """The account behind a console session, or None when it is gone."""
    with app.session() as session:
        user = session.get(StaffUser, user_id)
        return _record(user) if user is not None else None


def set_role(app: Newsletter, email: str, role: str, *, actor: str) -> StaffUserRecord:
    check_role(role)
    with app.session() as session:
        user = _load(session, email)
        if user.role == "admin" and role != "admin":
            _keep_an_admin(session, user.id)
        if user.role != role:
            end_sessions(user)
        user.role = role
        _audit(session, actor, "user.set_role", user.id, f"role {role}")
        return _record(user)


def set_disabled(
    app: Newsletter, email: str, *, disabled: bool = True, actor: str
) -> StaffUserRecord:
    """Disable (or enable again) an account; a disabled account's sessions end at once."""
    with app.session() as session:
        user = _load(session, email)
        if disabled and user.role == "admin":
            _keep_an_admin(session, user.id)
        if disabled:
            end_sessions(user)
        user.disabled = disabled
        _audit(session, actor, "user.disable" if disabled else "user.enable", user.id)
        return _record(user)


def reset_password(app: Newsletter, email: str, password: str, *, actor: str) -> StaffUserRecord:
    hashed = hash_password(password)
    with app.session() as session:
        user = _load(session, email)
        user.password_hash = hashed
        end_sessions(user)
        _audit(session, actor, "user.reset_password", user.id)
        return _record(user)


def end_sessions(user: StaffUser) -> None:
    """End every console session of the account: a password reset (the old one may be
    known to someone), a disable or a role change must not leave a session open with
    what the account was before. Sessions carry the generation they were made under
    and newsletter.admin.security refuses any other."""
    user.session_generation += 1


def _keep_an_admin(session: Session, user_id: int) -> None:
    """Refuse a change that would leave no enabled admin to manage the others."""
    others = session.scalar(
        select(func.count()).where(
            StaffUser.role == "admin", StaffUser.disabled.is_(False), StaffUser.id != user_id
        )
    )
    if not others:
        raise InvalidState("this is the last enabled admin; make another admin first")


def authenticate(app: Newsletter, email: str, password: str) -> StaffUserRecord | None:
    """The account if the address and password match an enabled one, else None.

    The caller says one generic thing on None, whatever was wrong.
    """
    hasher = _hasher()
    try:
        key = _key(email)
    except InputError:
        key = None
    with app.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.email_key == key)) if key else None
        try:
            hasher.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled:
            return None
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
        user.last_login_at = utcnow()
        _audit(session, staff_actor(user.email), "user.sign_in", user.id)
        return _record(user)


def accounts_with_permission(app: Newsletter, permission: str) -> list[StaffUserRecord]:
    """Enabled accounts whose role has `permission` (four-eyes approval needs a second one)."""
    with app.session() as session:
        users = session.scalars(select(StaffUser).where(StaffUser.disabled.is_(False)))
        return [_record(user) for user in users if allows(user.role, permission)]


def _audit(session: Session, actor: str, action: str, user_id: int, detail: str = "") -> None:
    """Every change to an account, and every sign-in, is in the audit trail."""
    audit.record(session, actor, action, "user", user_id, detail)
