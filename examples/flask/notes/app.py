"""The notes API: one Flask app factory, its auth variant chosen by NOTES_AUTH."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .auth import Auth, AuthError
from .sessions import SessionAuth
from .settings import Settings
from .store import Store, make_store
from .tokens import JwtAuth
from .users import UserDirectory

MAX_BODY_BYTES = 16 * 1024
MAX_NOTE_CHARS = 1000
NOTES_KEPT = 20  # per user, newest first
NOTES_TTL_S = 24 * 60 * 60
INVALID_LOGIN = "invalid username or password"
FLOOR_USER = "alice0"
BAD_LOGIN_BODY = "send username and password as JSON or as a form"

log = logging.getLogger("notes")


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """The app for the environment (os.environ by default): `gunicorn 'notes:create_app()'`."""
    settings = Settings.from_env(env)
    store = make_store(settings.redis_url, settings.namespace)
    auth: Auth = (SessionAuth(store) if settings.auth == "session"
                  else JwtAuth(settings.jwt_secret, store))
    if settings.auth == "jwt" and settings.is_jwt_secret_generated:
        log.warning("NOTES_JWT_SECRET is not set: a secret was generated for this process; "
                    "with several workers or nodes set it, or tokens fail on the others")
    app = Flask("notes")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    _add_error_handlers(app)
    _add_routes(app, settings, store, auth, UserDirectory(settings.users))
    return app


def _add_error_handlers(app: Flask) -> None:
    @app.errorhandler(AuthError)
    def refused(error: AuthError) -> tuple[Response, int, dict[str, str]]:
        return jsonify(detail=error.message), error.status, error.headers

    @app.errorhandler(redis.RedisError)
    def store_down(error: redis.RedisError) -> tuple[Response, int, dict[str, str]]:
        # Fail closed, and not with 401, which would tell clients to drop their credentials.
        log.warning("store error: %s", error)
        return jsonify(detail="store unavailable"), 503, {"Retry-After": "1"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return jsonify(detail=error.description), error.code or 500


def _login_fields() -> tuple[str, str]:
    body = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(body, Mapping):
        raise AuthError(400, BAD_LOGIN_BODY)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise AuthError(400, BAD_LOGIN_BODY)
    return username, password


def _add_routes(app: Flask, settings: Settings, store: Store, auth: Auth,
                users: UserDirectory) -> None:
    @app.post("/login")
    def login() -> Response:
        username, password = _login_fields()
        if not users.verify(username, password):
            raise AuthError(401, INVALID_LOGIN)
        return auth.login(username)

    @app.get("/me")
    def me() -> Response:
        principal = auth.authenticate()
        return jsonify(username=principal.username, profile=users.profile(principal.username))

    @app.post("/notes")
    def add_note() -> tuple[Response, int]:
        principal = auth.authenticate()
        auth.check_write(principal)
        body = request.get_json(silent=True)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not 0 < len(text) <= MAX_NOTE_CHARS:
            raise AuthError(400, f'send JSON {{"text": ...}}, 1 to {MAX_NOTE_CHARS} characters')
        note_id = secrets.token_hex(8)
        store.push(f"notes:{principal.username}", f"{note_id}:{text}", NOTES_KEPT, NOTES_TTL_S)
        return jsonify(id=note_id, text=text), 201

    @app.post("/logout")
    def logout() -> Response:
        principal = auth.authenticate()
        auth.check_write(principal)
        return auth.logout(principal)

    @app.get("/public/me")
    def public_me() -> Response:
        # The work of GET /me for a fixed user without the auth step: the floor a benchmark
        # reads the auth step's cost against.
        return jsonify(username=FLOOR_USER, profile=users.profile(FLOOR_USER))

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        store_name = "redis" if settings.redis_url else "memory"
        if not store.is_healthy():
            return jsonify(status="unavailable", auth=settings.auth, store=store_name), 503
        return jsonify(status="ok", auth=settings.auth, store=store_name), 200
