"""The twin target: one FastAPI app whose auth step is chosen by AUTH_MODE."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from targets.errors import BadRequest, Forbidden, NotAvailable, Unauthorized
from targets.keys import KeySet
from targets.modes.base import AuthMode
from targets.modes.hybrid import HybridAuth
from targets.modes.jwt_auth import JwtAuth
from targets.modes.noauth import FLOOR_USER, NoAuth
from targets.modes.session import SessionAuth
from targets.passwords import UserDirectory
from targets.responses import JSON, json_response, profile
from targets.seeding import seed_sessions
from targets.settings import Settings
from targets.stores import Store, StoreUnavailable, check_eviction, make_store
from targets.timing import timed_step
from targets.tokens import TokenCodec

MAX_LOGIN_BYTES = 4096
MAX_ITEM_BYTES = 16384
MAX_USERNAME = 64


def make_codec(settings: Settings) -> TokenCodec:
    """Keys parsed once, here, at start; never per request."""
    if settings.jwt_keys_dir is not None:
        keys = KeySet.load(settings.jwt_alg, settings.jwt_keys_dir, settings.jwt_active_kid)
    else:
        keys = KeySet.generate(settings.jwt_alg, settings.jwt_rsa_bits)
    codec_class = TokenCodec
    if settings.jwt_lib == "joserfc":
        from targets.tokens_joserfc import JoserfcCodec

        codec_class = JoserfcCodec
    return codec_class(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=settings.access_ttl,
        leeway=settings.jwt_leeway,
        max_bytes=settings.max_credential_bytes,
        cache_size=settings.verify_cache,
    )


def make_mode(settings: Settings, store: Store) -> AuthMode:
    """The auth step named by AUTH_MODE."""
    if settings.auth_mode == "session":
        return SessionAuth(settings, store)
    if settings.auth_mode == "jwt":
        return JwtAuth(settings, store, make_codec(settings))
    if settings.auth_mode == "hybrid":
        return HybridAuth(settings, store, make_codec(settings))
    return NoAuth()


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest("body too large", 413)
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no length: count as it comes
        body += chunk
        if len(body) > limit:
            raise BadRequest("body too large", 413)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build a target from settings (default: the environment) and an optional store."""
    settings = settings or Settings.from_env()
    store = store or make_store(settings)
    mode = make_mode(settings, store)
    users = UserDirectory(settings.seed_users, settings.kdf_n, settings.kdf_p)

    @contextlib.asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        if settings.needs_store or settings.seed_sessions:
            await store.open()
        started.state.store_settings = None
        if settings.needs_store:  # refuses a store that may evict what the mode keeps
            started.state.store_settings = await check_eviction(
                store, settings.store_allow_eviction)
        if settings.seed_sessions:
            await seed_sessions(store, settings.seed_sessions, settings)
        await mode.start()
        # Everything built at start (modules, app, keys) never becomes garbage: keep the
        # collector from re-scanning it on every full collection during the run.
        gc.freeze()
        try:
            yield
        finally:
            await mode.stop()
            await store.close()

    app = FastAPI(title=f"authbench target ({settings.auth_mode})", lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.mode = mode
    # RFC 9110 wants a challenge on every 401; RFC 6750 3.1 adds error= only when a
    # bearer token was sent. Cookie sessions have no registered scheme: name ours.
    scheme = "Bearer" if mode.is_bearer else "Cookie"
    missing = {"www-authenticate": f'{scheme} realm="authbench"'}
    invalid = {"www-authenticate": f'{scheme} realm="authbench", error="invalid_token"'}

    @app.exception_handler(Unauthorized)
    async def on_unauthorized(_: Request, exc: Exception) -> Response:
        is_missing = isinstance(exc, Unauthorized) and exc.is_missing
        return json_response({"error": "unauthorized"}, 401, missing if is_missing else invalid)

    @app.exception_handler(Forbidden)
    async def on_forbidden(_: Request, exc: Exception) -> Response:
        return json_response({"error": "csrf", "detail": str(exc)}, 403)

    @app.exception_handler(BadRequest)
    async def on_bad_request(_: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, BadRequest) else 400
        return json_response({"error": "bad_request", "detail": str(exc)}, status)

    @app.exception_handler(NotAvailable)
    async def on_not_available(_: Request, exc: Exception) -> Response:
        return json_response({"error": "not_found", "detail": str(exc)}, 404)

    async def on_store_down(_: Request, exc: Exception) -> Response:
        # 503, not 401: the credential may be fine, so the client must not drop it.
        return json_response(
            {"error": "store_unavailable", "detail": type(exc).__name__},
            503, {"retry-after": "1"},
        )

    store_errors: set[type[BaseException]] = {StoreUnavailable, *store.unavailable_errors}
    for error in store_errors:
        if issubclass(error, Exception):
            app.add_exception_handler(error, on_store_down)

    # /noauth and /api/me are twins: the same code, but for the one authenticate() call.
    @app.get("/noauth")
    async def noauth(request: Request) -> Response:
        with timed_step() as timer:
            pass
        return Response(orjson.dumps(profile(FLOOR_USER)), media_type=JSON,
                        headers={"server-timing": timer.header()})

    @app.get("/api/me")
    async def me(request: Request) -> Response:
        with timed_step() as timer:
            principal = await mode.authenticate(request)
        return Response(orjson.dumps(profile(principal.user)), media_type=JSON,
                        headers={"server-timing": timer.header()})

    @app.post("/api/items", status_code=201)
    async def create_item(request: Request) -> Response:
        with timed_step() as timer:
            principal = await mode.authenticate(request)
            mode.check_write(request, principal)
        item = await _read_json(request, MAX_ITEM_BYTES)
        if not isinstance(item, dict):
            raise BadRequest("an item is a JSON object")
        return json_response(
            {"owner": principal.user, "accepted": True, "fields": len(item)}, 201,
            {"server-timing": timer.header()}
        )

    @app.post("/auth/login")
    async def login(request: Request) -> Response:
        body = await _read_json(request, MAX_LOGIN_BYTES)
        if not isinstance(body, dict):
            raise BadRequest("expected {\"username\": ..., \"password\": ...}")
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise BadRequest("username and password must be strings")
        if len(username) > MAX_USERNAME:
            raise BadRequest("username too long")
        if not await users.verify(username, password):
            raise Unauthorized("wrong username or password")  # one message for both cases
        return await mode.login(request, username)

    @app.post("/auth/logout")
    async def logout(request: Request) -> Response:
        principal = await mode.authenticate(request)
        mode.check_write(request, principal)
        return await mode.logout(request, principal)

    @app.post("/auth/refresh")
    async def refresh(request: Request) -> Response:
        return await mode.refresh(request)

    @app.get("/auth/sessions")
    async def list_sessions(request: Request) -> Response:
        principal = await mode.authenticate(request)
        return json_response(await mode.list_sessions(principal))

    @app.delete("/auth/sessions")
    async def logout_everywhere(request: Request) -> Response:
        principal = await mode.authenticate(request)
        mode.check_write(request, principal)
        return json_response(await mode.logout_everywhere(principal))

    @app.get("/.well-known/jwks.json")
    async def jwks_document(request: Request) -> Response:
        if mode.jwks is None:
            raise NotAvailable("no public keys: the mode is not JWT or the algorithm is HMAC")
        return json_response(mode.jwks)

    @app.get("/health")
    async def health(request: Request) -> Response:
        if settings.needs_store:
            await store.ping()
        return json_response(
            {
                "status": "ok",
                "auth_mode": settings.auth_mode,
                "store": settings.store,
                "jwt_alg": settings.jwt_alg,
                "jwt_revocation": settings.jwt_revocation,
                "pid": os.getpid(),
                "store_settings": request.app.state.store_settings,
                **await mode.health(),
            }
        )

    return app
