"""Browser sessions of the login pages: a random id in an HttpOnly cookie, stored hashed.

A session starts anonymous (username "") when the login page is shown, so that the login form can
carry a CSRF token; a successful login replaces it with a new session (a new id: an id planted
before login is worth nothing after it). The CSRF token is an HMAC of the session id: it is bound
to the session, unguessable without the cookie, and needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select
from starlette.requests import Request
from starlette.responses import Response

from reference_impl.auth.codes import digest
from reference_impl.auth.schema import sessions
from reference_impl.auth.web import is_https

COOKIE = "eqlab_auth_session"
COOKIE_PATH = "/auth"  # only the authorization server's pages ever see it
ANONYMOUS_S = 15 * 60  # to fill in the login form
LOGGED_IN_S = 60 * 60  # single sign-on across clients for an hour
ANONYMOUS = ""


@dataclass(frozen=True)
class Session:
    raw_id: str
    username: str  # "" until logged in

    @property
    def logged_in(self) -> bool:
        return self.username != ANONYMOUS

    def csrf(self) -> str:
        mac = hmac.new(self.raw_id.encode(), b"eqlab csrf", hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf(), token)


def cookie_of(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value and len(value) <= 128 else None


def find(conn: Connection, raw_id: str | None, now: int | None = None) -> Session | None:
    if raw_id is None:
        return None
    now = now or int(time.time())
    row = conn.execute(select(sessions).where(sessions.c.session_hash == digest(raw_id))).first()
    if row is None or row.expires_at <= now:
        return None
    return Session(raw_id, row.username)


def start(conn: Connection, username: str, replaces: str | None = None, now: int | None = None) -> Session:
    now = now or int(time.time())
    conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
    if replaces is not None:
        conn.execute(delete(sessions).where(sessions.c.session_hash == digest(replaces)))
    raw_id = secrets.token_urlsafe(32)
    lifetime = LOGGED_IN_S if username != ANONYMOUS else ANONYMOUS_S
    conn.execute(insert(sessions).values(session_hash=digest(raw_id), username=username, expires_at=now + lifetime))
    return Session(raw_id, username)


def set_cookie(response: Response, request: Request, session: Session) -> None:
    lifetime = LOGGED_IN_S if session.logged_in else ANONYMOUS_S
    response.set_cookie(
        COOKIE,
        session.raw_id,
        max_age=lifetime,
        path=COOKIE_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )
