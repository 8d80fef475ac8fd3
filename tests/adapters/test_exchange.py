"""The requests an adapter implies and what answers yield: templates, credentials on
the wire, login bodies, captures, cookies, users."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from adapters.exchange import (
    MissingValue,
    answer_cookies,
    capture,
    credential_bytes,
    json_pointer,
    login_request,
    prepare,
    render,
    render_data,
    user_at,
    user_count,
)
from adapters.schema import Adapter, Login, Request, Send

SEND = Send(headers={"Authorization": "Bearer {token}"},
            cookies={"sid": "{sid}"},
            csrf={"X-CSRF-Token": "{csrf}"})
ALL = {"token": "T0K", "sid": "S1D", "csrf": "C5RF"}


def adapter(users: dict[str, Any]) -> Adapter:
    return Adapter.model_validate({
        "users": users, "login": {"path": "/login"}, "capture": {"token": "json:/token"},
        "send": {"headers": {"Authorization": "Bearer {token}"}, "cookies": {"sid": "{sid}"},
                 "csrf": {"X-CSRF-Token": "{csrf}"}},
        "hot": [{"path": "/me"}], "variant": {"name": "a", "kind": "jwt"}})


# render


def test_render_fills_named_fields() -> None:
    assert render("/notes/{id}?u={user}", {"id": "7", "user": "bob"}) == "/notes/7?u=bob"


def test_double_braces_stand_for_braces() -> None:
    assert render("{{id}} {id} }}{{", {"id": "7"}) == "{id} 7 }{"
    assert render("{{{id}}}", {"id": "7"}) == "{7}"


def test_text_that_names_no_field_is_left_as_it_is() -> None:
    assert render('{"a": 1} { spaced } {1x}', {}) == '{"a": 1} { spaced } {1x}'


def test_a_missing_value_raises_missing_value_naming_it() -> None:
    with pytest.raises(MissingValue) as exc:
        render("Bearer {token}", {"sid": "x"})
    assert exc.value.args == ("token",)
    assert isinstance(exc.value, KeyError)


def test_a_value_is_sent_as_it_is_even_with_braces_in_it() -> None:
    assert render("{password}", {"password": "p}}w{{x"}) == "p}}w{{x"


def test_render_data_renders_every_string_inside() -> None:
    data = {"a": "{x}", "b": [1, "{x}-{x}", None, True], "c": {"d": "{x}"}}
    assert render_data(data, {"x": "v"}) == {"a": "v", "b": [1, "v-v", None, True],
                                             "c": {"d": "v"}}


# prepare


def test_an_authenticated_get_carries_the_credential_but_no_csrf() -> None:
    prepared = prepare(Request(path="/me"), SEND, ALL)
    assert prepared is not None
    assert prepared.headers == {"Authorization": "Bearer T0K", "Cookie": "sid=S1D"}
    assert (prepared.method, prepared.path, prepared.content) == ("GET", "/me", None)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_state_changing_request_also_carries_the_csrf_headers(method: str) -> None:
    prepared = prepare(Request.model_validate({"path": "/x", "method": method}), SEND, ALL)
    assert prepared is not None and prepared.headers["X-CSRF-Token"] == "C5RF"


def test_credential_entries_whose_capture_is_missing_are_left_out() -> None:
    session = prepare(Request(path="/me", method="POST"), SEND, {"sid": "S1D", "csrf": "C"})
    assert session is not None
    assert session.headers == {"Cookie": "sid=S1D", "X-CSRF-Token": "C"}
    jwt = prepare(Request(path="/me", method="POST"), SEND, {"token": "T0K"})
    assert jwt is not None and jwt.headers == {"Authorization": "Bearer T0K"}


def test_a_request_with_a_when_applies_only_once_that_value_is_captured() -> None:
    refresh = Request(path="/refresh", method="POST", when="rt")
    assert prepare(refresh, SEND, ALL) is None
    assert prepare(refresh, SEND, {**ALL, "rt": "R"}) is not None


@pytest.mark.parametrize("request_", [
    Request(path="/notes/{note}"),
    Request.model_validate({"path": "/x", "method": "POST", "json": {"t": ["{refresh}"]}}),
    Request.model_validate({"path": "/x", "method": "POST", "form": {"t": "{refresh}"}}),
])
def test_a_request_whose_path_or_body_needs_a_missing_value_does_not_apply(
        request_: Request) -> None:
    assert prepare(request_, SEND, ALL) is None


def test_a_missing_value_in_a_requests_own_header_only_leaves_that_header_out() -> None:
    request = Request(path="/me", headers={"X-Refresh": "{rt}", "X-Client": "authbench"})
    prepared = prepare(request, SEND, ALL)
    assert prepared is not None
    assert "X-Refresh" not in prepared.headers and prepared.headers["X-Client"] == "authbench"


def test_a_request_without_credential_sends_none_but_its_own_headers() -> None:
    floor = Request(path="/public", credential=False, headers={"X-Client": "authbench"})
    prepared = prepare(floor, SEND, ALL)
    assert prepared is not None and prepared.headers == {"X-Client": "authbench"}
    bare = prepare(Request(path="/me", method="POST"), SEND, ALL, with_credential=False)
    assert bare is not None and bare.headers == {}


def test_a_requests_own_cookies_join_the_credential_cookies_in_one_header() -> None:
    request = Request(path="/refresh", method="POST", cookies={"rt": "{rt}"})
    prepared = prepare(request, SEND, {**ALL, "rt": "R"})
    assert prepared is not None and prepared.headers["Cookie"] == "sid=S1D; rt=R"
    alone = prepare(request.model_copy(update={"credential": False}), SEND, {**ALL, "rt": "R"})
    assert alone is not None and alone.headers == {"Cookie": "rt=R"}


def test_a_json_body_is_sent_compact_as_json() -> None:
    request = Request.model_validate({"path": "/notes", "method": "POST",
                                      "json": {"text": "by {token}", "n": 1}})
    prepared = prepare(request, SEND, ALL)
    assert prepared is not None
    assert prepared.headers["Content-Type"] == "application/json"
    assert prepared.content == b'{"text":"by T0K","n":1}'


def test_a_form_body_is_sent_form_encoded() -> None:
    request = Request.model_validate({"path": "/x", "method": "POST",
                                      "form": {"t": "{token}", "q": "a b&c"}})
    prepared = prepare(request, SEND, ALL)
    assert prepared is not None and prepared.content is not None
    assert prepared.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(prepared.content.decode()) == {"t": ["T0K"], "q": ["a b&c"]}


def test_a_requests_own_content_type_wins() -> None:
    request = Request.model_validate({"path": "/x", "method": "POST", "json": {"a": 1},
                                      "headers": {"Content-Type": "application/vnd.api+json"}})
    prepared = prepare(request, SEND, ALL)
    assert prepared is not None
    assert prepared.headers["Content-Type"] == "application/vnd.api+json"


def test_a_prepared_request_is_named_by_its_path_template() -> None:
    prepared = prepare(Request(path="/users/{sid}"), SEND, ALL)
    assert prepared is not None and (prepared.path, prepared.name) == ("/users/S1D", "/users/{sid}")


# login_request


def test_a_json_login_posts_username_and_password() -> None:
    request = login_request(Login(path="/login"), "bob", 'p"w')
    assert (request.method, request.path) == ("POST", "/login")
    assert request.headers == {"Content-Type": "application/json"}
    assert request.content is not None
    assert json.loads(request.content) == {"username": "bob", "password": 'p"w'}


def test_a_form_login_survives_any_password() -> None:
    login = Login(path="/auth/login", format="form",
                  body={"user": "{username}", "pass": "{password}", "remember": 1})
    password = "a&b=c d+e%f/é"
    request = login_request(login, "bob smith", password)
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert request.content is not None
    assert parse_qs(request.content.decode()) == {
        "user": ["bob smith"], "pass": [password], "remember": ["1"]}


def test_login_headers_may_name_the_user() -> None:
    login = Login(path="/login", headers={"X-User": "{username}", "X-Token": "{token}"})
    request = login_request(login, "bob", "pw")
    assert request.headers == {"X-User": "bob", "Content-Type": "application/json"}


# capture

BODY = json.dumps({"a/b": "slash", "m~n": "tilde", "items": ["zero", "one"],
                   "outer": {"inner": {"leaf": "deep"}}, "count": 42, "ratio": 1.5,
                   "flag": True, "object": {"k": 1}, "nothing": None}).encode()


@pytest.mark.parametrize(("pointer", "value"), [
    ("/a~1b", "slash"), ("/m~0n", "tilde"), ("/items/1", "one"), ("/outer/inner/leaf", "deep"),
    ("/count", "42"), ("/ratio", "1.5"),
])
def test_a_json_capture_follows_its_pointer(pointer: str, value: str) -> None:
    assert capture({"v": f"json:{pointer}"}, {}, {}, BODY) == {"v": value}


@pytest.mark.parametrize("pointer", ["/flag", "/object", "/items", "/nothing", "", "/items/2",
                                     "/items/x", "/absent", "/outer/absent/leaf", "/count/0"])
def test_a_json_capture_takes_only_a_string_or_number_that_is_there(pointer: str) -> None:
    assert capture({"v": f"json:{pointer}"}, {}, {}, BODY) == {}


def test_json_pointer_of_the_empty_pointer_is_the_whole_document() -> None:
    assert json_pointer({"a": 1}, "") == {"a": 1}
    with pytest.raises(KeyError):
        json_pointer({"a": 1}, "/b")


def test_cookie_and_header_captures() -> None:
    rules = {"sid": "cookie:sid", "gone": "cookie:gone", "token": "header:X-Token",
             "lower": "header:x-other", "absent": "header:X-Absent"}
    found = capture(rules, {"x-token": "T", "X-Other": "O"}, {"sid": "S", "gone": ""}, b"")
    assert found == {"sid": "S", "token": "T", "lower": "O"}


def test_an_answer_that_is_not_json_gives_no_json_captures_but_the_rest() -> None:
    rules = {"token": "json:/token", "sid": "cookie:sid"}
    assert capture(rules, {}, {"sid": "S"}, b"<html>not json</html>") == {"sid": "S"}


# answer_cookies


def test_answer_cookies_keep_name_and_value_only() -> None:
    assert answer_cookies(["sid=abc; Path=/; HttpOnly; SameSite=Lax",
                           'quoted="v 1"; Secure']) == {"sid": "abc", "quoted": "v 1"}


def test_a_deleted_cookie_is_left_out() -> None:
    assert answer_cookies(["sid=; Max-Age=0; Path=/", "rt=R", "novalue", "=orphan"]) == \
        {"rt": "R"}


# users


def test_a_pattern_of_users_wraps_around() -> None:
    api = adapter({"pattern": "user{n}", "count": 3, "password": "pw{n}-{username}"})
    assert user_count(api) == 3
    assert user_at(api, 0) == ("user0", "pw0-user0")
    assert user_at(api, 2) == ("user2", "pw2-user2")
    assert user_at(api, 4) == ("user1", "pw1-user1")


def test_a_list_of_users_wraps_around() -> None:
    api = adapter({"list": [{"username": "a", "password": "pa"},
                            {"username": "b", "password": "pb"}]})
    assert user_count(api) == 2
    assert [user_at(api, i) for i in range(5)] == [("a", "pa"), ("b", "pb"), ("a", "pa"),
                                                   ("b", "pb"), ("a", "pa")]


def test_credential_bytes_count_the_headers_on_the_wire() -> None:
    api = adapter({"pattern": "u{n}", "count": 1, "password": "pw"})
    get = len("Authorization: Bearer T0K\r\n") + len("Cookie: sid=S1D\r\n")
    assert credential_bytes(api, ALL) == get
    assert credential_bytes(api, ALL, "POST") == get + len("X-CSRF-Token: C5RF\r\n")
    assert credential_bytes(api, {"token": "T0K"}) == len("Authorization: Bearer T0K\r\n")
    assert credential_bytes(api, {}) == 0
