"""The bookmarks API: one aiohttp app factory, its auth variant chosen by BOOKMARKS_AUTH."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from .auth import Auth, AuthError
from .bodies import MAX_BODY_BYTES, read_json_object, read_login_fields
from .sessions import SessionAuth
from .settings import Settings
from .store import DEMO_USER, BookmarkStore
from .tokens import JwtAuth
from .users import UserDirectory

MAX_URL_CHARS = 2048
MAX_TITLE_CHARS = 200
INVALID_LOGIN = "invalid username or password"
BAD_BOOKMARK = (f'send JSON {{"url": "https://...", "title": ...}}: an http(s) URL of at most '
                f"{MAX_URL_CHARS} characters, a title of 1 to {MAX_TITLE_CHARS}")

log = logging.getLogger("bookmarks")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(env: Mapping[str, str] | None = None) -> web.Application:
    """The app for the environment (os.environ by default)."""
    settings = Settings.from_env(env)
    if settings.auth == "jwt" and settings.is_jwt_secret_generated:
        log.warning("BOOKMARKS_JWT_SECRET is not set: a secret was generated for this "
                    "process, so its tokens die with it")
    auth: Auth = (SessionAuth() if settings.auth == "session"
                  else JwtAuth(settings.jwt_secret, settings.access_ttl_s))
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_as_json])
    app.add_routes(_routes(settings, auth, UserDirectory(settings.users), BookmarkStore()))
    app.add_routes(auth.routes())
    return app


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals as JSON `{"detail": ...}`, with their headers (WWW-Authenticate, Allow)."""
    try:
        return await handler(request)
    except AuthError as error:
        return web.json_response({"detail": error.message}, status=error.status,
                                 headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {name: value for name, value in error.headers.items()
                   if name.lower() not in ("content-type", "content-length")}
        return web.json_response({"detail": error.reason}, status=error.status,
                                 headers=headers)


def _bookmark_fields(body: Mapping[str, object]) -> tuple[str, str]:
    url, title = body.get("url"), body.get("title")
    if not isinstance(url, str) or not isinstance(title, str):
        raise AuthError(400, BAD_BOOKMARK)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host
        raise AuthError(400, BAD_BOOKMARK) from None
    if (len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname
            or not 0 < len(title.strip()) <= MAX_TITLE_CHARS):
        raise AuthError(400, BAD_BOOKMARK)
    return url, title.strip()


def _routes(settings: Settings, auth: Auth, users: UserDirectory,
            store: BookmarkStore) -> list[web.RouteDef]:
    async def login(request: web.Request) -> web.Response:
        username, password = await read_login_fields(request)
        # The KDF blocks for tens of ms: in a worker thread, the loop keeps serving.
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, users.verify, username, password):
            raise AuthError(401, INVALID_LOGIN)
        return auth.login(request, username)

    async def logout(request: web.Request) -> web.Response:
        return await auth.logout(request, auth.authenticate(request))

    async def list_bookmarks(request: web.Request) -> web.Response:
        principal = auth.authenticate(request)
        return web.json_response(store.listing(principal.username))

    async def add_bookmark(request: web.Request) -> web.Response:
        principal = auth.authenticate(request)
        url, title = _bookmark_fields(await read_json_object(request))
        return web.json_response(store.add(principal.username, url, title), status=201)

    async def public_stats(request: web.Request) -> web.Response:
        # The floor twin of GET /bookmarks: the same listing work, for a fixed user, no auth.
        return web.json_response(store.listing(DEMO_USER))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "auth": settings.auth})

    return [
        web.post("/auth/login", login),
        web.post("/auth/logout", logout),
        web.get("/bookmarks", list_bookmarks),
        web.post("/bookmarks", add_bookmark),
        web.get("/public/stats", public_stats),
        web.get("/healthz", healthz),
    ]
