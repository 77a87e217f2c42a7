"""Dashboard sessions: the admin token is asked once on a login form; the browser then holds only
a random session id in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/ui`), never the token.
Sessions live in this process's memory (a restart logs everyone out) and expire.

Every state-changing request carries the session's CSRF token (a hidden form field, or the
`X-CSRF-Token` header for htmx), compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

COOKIE = "gateway_ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
TTL = 8 * 3600.0
MAX_SESSIONS = 1000


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    expires: float
    flash: list[str] = field(default_factory=list)  # messages shown once, after a redirect

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())

    def take_flash(self) -> list[str]:
        shown, self.flash = self.flash, []
        return shown


class Sessions:
    """Who is logged in. With no admin token (a loopback-only admin listener) there is no login:
    any visitor gets a session, which still carries a CSRF token."""

    def __init__(self, token: str | None, ttl: float = TTL) -> None:
        self._token = token.encode() if token else None
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}

    @property
    def open(self) -> bool:
        return self._token is None

    def token_ok(self, given: str) -> bool:
        return self._token is None or hmac.compare_digest(given.encode(), self._token)

    def create(self, now: float) -> Session:
        self._expire(now)
        if len(self._sessions) >= MAX_SESSIONS:  # the oldest make room
            for sid in sorted(self._sessions, key=lambda s: self._sessions[s].expires)[:100]:
                del self._sessions[sid]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + self.ttl)
        self._sessions[session.id] = session
        return session

    def find(self, sid: str | None, now: float) -> Session | None:
        session = self._sessions.get(sid) if sid else None
        if session is None:
            return None
        if session.expires <= now:
            del self._sessions[session.id]
            return None
        return session

    def end(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def _expire(self, now: float) -> None:
        for sid in [s for s, found in self._sessions.items() if found.expires <= now]:
            del self._sessions[sid]
