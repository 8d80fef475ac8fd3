"""What an adapter may hold, checked by the models themselves: types as given, no
unknown keys, bounds, the rules that span several keys."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.schema import Adapter, Hot, Logout, Refresh, Request, Service, Users

# The least an adapter needs: who logs in, how, what comes back, how it goes back, one
# request to measure, and what the variant is.
MINIMAL: dict[str, Any] = {
    "users": {"pattern": "user{n}", "count": 3, "password": "pw-{username}"},
    "login": {"path": "/login"},
    "capture": {"token": "json:/token"},
    "send": {"headers": {"Authorization": "Bearer {token}"}},
    "hot": [{"path": "/me"}],
    "variant": {"name": "jwt", "kind": "jwt"},
}


def adapter(**changes: Any) -> Adapter:
    return Adapter.model_validate({**MINIMAL, **changes})


def first_error(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    """The first error's location (dotted) and type."""
    error = exc.value.errors()[0]
    return ".".join(str(part) for part in error["loc"]), error["type"]


def test_the_minimal_adapter_takes_the_defaults() -> None:
    api = adapter()
    assert api.login.method == "POST" and api.login.format == "json"
    assert api.login.body == {"username": "{username}", "password": "{password}"}
    assert api.hot[0].method == "GET" and api.hot[0].weight == 1 and api.hot[0].credential
    assert api.rejected == [401, 403]
    assert api.service is None and api.urls == [] and api.node_count == 1
    assert api.variant.store == "memory"


def test_logout_and_refresh_are_posts_by_default_and_logout_promises_nothing() -> None:
    logout = Logout(path="/logout")
    refresh = Refresh(path="/refresh")
    assert (logout.method, logout.revokes) == ("POST", False)
    assert (refresh.method, refresh.weight) == ("POST", 1)
    assert Refresh(path="/refresh", weight=0).weight == 0  # refresh may be left out of the mix


def test_types_are_taken_as_given() -> None:
    with pytest.raises(ValidationError) as exc:
        Hot.model_validate({"path": "/me", "weight": "2"})
    assert first_error(exc) == ("weight", "int_type")
    with pytest.raises(ValidationError) as exc:
        Users.model_validate({"pattern": "u{n}", "count": "10", "password": "pw"})
    assert first_error(exc) == ("count", "int_type")


@pytest.mark.parametrize("weight", [0, 1001])
def test_a_hot_weight_is_from_1_to_1000(weight: int) -> None:
    with pytest.raises(ValidationError) as exc:
        Hot(path="/me", weight=weight)
    assert first_error(exc)[0] == "weight"


def test_unknown_keys_are_refused_at_every_level() -> None:
    with pytest.raises(ValidationError) as exc:
        adapter(colour="red")
    assert first_error(exc) == ("colour", "extra_forbidden")
    with pytest.raises(ValidationError) as exc:
        adapter(login={"path": "/login", "bodyy": {}})
    assert first_error(exc) == ("login.bodyy", "extra_forbidden")


def test_a_model_is_frozen() -> None:
    request = Request(path="/me")
    with pytest.raises(ValidationError):
        request.path = "/other"  # type: ignore[misc]


@pytest.mark.parametrize("path", ["/", "/me", "/a/b?x=1"])
def test_a_path_on_the_apis_own_host_is_accepted(path: str) -> None:
    assert Request(path=path).path == path


@pytest.mark.parametrize("path", ["me", "", "http://evil.example/me", "//evil.example/me"])
def test_a_path_must_start_with_exactly_one_slash(path: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Request(path=path)
    assert first_error(exc)[0] == "path"
    assert "starting with one /" in str(exc.value)


def test_a_request_has_a_json_or_a_form_body_not_both() -> None:
    with pytest.raises(ValidationError, match="give json or form, not both"):
        Request.model_validate({"path": "/x", "json": {"a": 1}, "form": {"b": "2"}})
    assert Request.model_validate({"path": "/x", "json": {"a": 1}}).json_body == {"a": 1}


@pytest.mark.parametrize("rule", ["json:", "json:/token", "json:/a/0/b~1c", "cookie:sid",
                                  "cookie:__Host-sid", "header:X-Auth-Token"])
def test_capture_rules_that_name_a_source(rule: str) -> None:
    assert adapter(capture={"value": rule}).capture == {"value": rule}


@pytest.mark.parametrize("rule", ["body:/x", "json:token", "cookie:", "cookie:a b",
                                  "header:X Token", "header:", "token"])
def test_capture_rules_without_a_known_source_are_refused(rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        adapter(capture={"value": rule})
    assert first_error(exc)[0] == "capture.value"


def test_a_capture_is_named_as_a_template_can_name_it() -> None:
    with pytest.raises(ValidationError, match="'my-token' is not a name"):
        adapter(capture={"my-token": "json:/token"})
    with pytest.raises(ValidationError) as exc:
        adapter(capture={})
    assert first_error(exc)[0] == "capture"


def test_there_is_at_least_one_hot_request() -> None:
    with pytest.raises(ValidationError) as exc:
        adapter(hot=[])
    assert first_error(exc)[0] == "hot"


@pytest.mark.parametrize("users", [
    {"pattern": "user{n}", "count": 2, "password": "pw"},
    {"list": [{"username": "a", "password": "b"}]},
    {"file": "users.csv"},
])
def test_users_come_from_exactly_one_source(users: dict[str, Any]) -> None:
    given = Users.model_validate(users)
    assert given.model_dump(by_alias=True, exclude_defaults=True) == users


@pytest.mark.parametrize(("users", "why"), [
    ({}, "give exactly one of"),
    ({"pattern": "u{n}", "password": "pw", "list": [{"username": "a", "password": "b"}]},
     "got pattern, list"),
    ({"pattern": "user", "password": "pw"}, 'needs "{n}"'),
    ({"pattern": "user{n}"}, "a password template"),
])
def test_users_sources_that_do_not_add_up_are_refused(users: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(why)):
        Users.model_validate(users)


def test_a_user_count_is_at_least_one() -> None:
    with pytest.raises(ValidationError):
        Users(pattern="u{n}", password="pw", count=0)


@pytest.mark.parametrize("code", [200, 302, 399, 500])
def test_rejected_statuses_are_4xx(code: int) -> None:
    with pytest.raises(ValidationError, match=f"rejected: {code} is not a 4xx status"):
        adapter(rejected=[401, code])


def test_is_rejected_reads_the_rejected_statuses() -> None:
    api = adapter(rejected=[401])
    assert api.is_rejected(401)
    assert not api.is_rejected(403)
    with pytest.raises(ValidationError):
        adapter(rejected=[])


def test_service_and_urls_are_exclusive() -> None:
    with pytest.raises(ValidationError, match=r"give \[service\].*or urls"):
        adapter(service={"command": ["serve"]}, urls=["http://127.0.0.1:8000"])


def test_urls_are_the_nodes() -> None:
    api = adapter(urls=["http://127.0.0.1:8001", "http://127.0.0.1:8002"])
    assert api.node_count == 2
    assert adapter(urls=["http://127.0.0.1:8001", "http://127.0.0.1:8002"], nodes=2).node_count == 2
    with pytest.raises(ValidationError, match="nodes = 3 but 2 urls"):
        adapter(urls=["http://127.0.0.1:8001", "http://127.0.0.1:8002"], nodes=3)
    assert adapter(service={"command": ["serve"]}, nodes=3).node_count == 3


def test_a_service_names_a_command_and_a_known_stop_signal() -> None:
    service = Service(command=["serve", "{port}"])
    assert (service.cwd, service.ready, service.stop_signal) == (".", "/", "SIGTERM")
    with pytest.raises(ValidationError) as exc:
        Service(command=[])
    assert first_error(exc)[0] == "command"
    with pytest.raises(ValidationError, match="expected one of SIGTERM"):
        Service(command=["serve"], stop_signal="SIGUSR1")
    with pytest.raises(ValidationError) as exc:
        Service(command=["serve"], ready="healthz")
    assert first_error(exc)[0] == "ready"


@pytest.mark.parametrize(("variant", "key"), [
    ({"name": "Session", "kind": "session"}, "variant.name"),
    ({"name": "floor-2", "kind": "session"}, "variant.name"),
    ({"name": "a", "kind": "oauth"}, "variant.kind"),
    ({"name": "a", "kind": "jwt", "store": "mongo"}, "variant.store"),
    ({"name": "a"}, "variant.kind"),
])
def test_a_variant_is_named_and_says_what_it_is(variant: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError) as exc:
        adapter(variant=variant)
    assert first_error(exc)[0] == key
