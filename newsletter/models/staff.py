"""Staff users: the people who sign in to the console."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Kept as typed; unique on the case-folded form so that Ana@ and ana@ are one account.
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # One of newsletter.roles.ROLE_NAMES.
    role: Mapped[str] = mapped_column(String(20))
    # An argon2id hash (argon2-cffi's encoded form, parameters included).
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Bumped by a password reset, a disable or a role change: a console session
    # remembers the generation it was made under and ends when that is no longer
    # the account's (newsletter.admin.security).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
