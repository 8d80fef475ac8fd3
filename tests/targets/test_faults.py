"""The store is down or slow: targets fail closed with 503, fast, and recover on their own.

Faults come from a TCP proxy between a real target and the real Redis or PostgreSQL;
the shared services themselves are never touched.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from authbench.infra.launcher import TargetFailed, TargetProcess
from authbench.infra.ports import LOOPBACK, free_port
from targets.keys import generate_key, write_key
from targets.revocations import HEARTBEAT
from tests.conftest import StartTarget
from tests.support import FAST_KDF, unique_namespace

pytestmark = pytest.mark.slow  # real targets behind a faulty proxy: seconds of timeouts each

T = TypeVar("T")

STORE_TIMEOUT = 0.5
FAIL_FAST = 1.5  # seconds: the longest a request may take to fail closed
RECOVERY = 8.0  # seconds: bound on the wait for a target to serve again
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432}


@dataclass(eq=False)
class _Link:
    """One client connection through the proxy, and its upstream connection if any."""

    client: asyncio.StreamWriter
    flowing: asyncio.Event
    upstream: asyncio.StreamWriter | None = None
    is_cut: bool = False

    def cut(self) -> None:
        self.is_cut = True
        self.flowing.set()  # wake the pumps, which then see the cut
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


@dataclass
class StoreProxy:
    """A TCP proxy on 127.0.0.1 in a thread with its own event loop.

    forward(): bytes flow both ways. down(): listener closed (new connections are
    refused) and every open connection is cut. stall(): connections are accepted and
    bytes read, but nothing is forwarded. Leaving a stall either cuts the stalled
    connections (a peer that restarted) or leaves them stalled for good while new ones
    flow (half-open connections after a network partition): cut_stalled=False.
    """

    upstream_host: str
    upstream_port: int
    port: int = 0
    mode: str = "forward"
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _links: set[_Link] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    errors: list[BaseException] = field(default_factory=list)

    # --- called from the test thread -------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._start())

    def forward(self, cut_stalled: bool = True) -> None:
        self._run(self._forward(cut_stalled))

    def down(self) -> None:
        self._run(self._down())

    def stall(self) -> None:
        self._run(self._stall())

    def close(self) -> None:
        if self._thread is None:
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        self._loop.close()
        self._thread = None
        assert not self.errors, f"the proxy itself failed: {self.errors!r}"

    def url_for(self, store_url: str) -> str:
        """store_url with its host and port replaced by the proxy's."""
        parts = urlsplit(store_url)
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}{LOOPBACK}:{self.port}"))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5.0)

    # --- on the proxy's loop -------------------------------------------------------------

    async def _start(self) -> None:
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, LOOPBACK, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _cut_all(self) -> None:
        for link in list(self._links):
            link.cut()

    async def _forward(self, cut_stalled: bool) -> None:
        if cut_stalled:
            for link in list(self._links):
                if not link.flowing.is_set():
                    link.cut()
        if self._server is None:
            await self._listen()
        self.mode = "forward"

    async def _down(self) -> None:
        self.mode = "down"
        await self._stop_listening()
        self._cut_all()

    async def _stall(self) -> None:
        if self._server is None:
            await self._listen()
        self.mode = "stall"
        for link in self._links:
            link.flowing.clear()

    async def _close(self) -> None:
        await self._stop_listening()
        self._cut_all()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3.0)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer, asyncio.Event())
        if self.mode == "forward":
            link.flowing.set()
        self._links.add(link)
        try:
            await link.flowing.wait()  # opened during a stall: held, never connected
            if link.is_cut:
                return
            up_reader, link.upstream = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
            await asyncio.gather(
                self._pump(reader, link.upstream, link),
                self._pump(up_reader, writer, link),
                return_exceptions=True,
            )
        except OSError:
            pass
        finally:
            self._links.discard(link)
            link.cut()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while data := await reader.read(65536):
                await link.flowing.wait()  # a stall holds the bytes here
                if link.is_cut:
                    return
                writer.write(data)
                await writer.drain()
        finally:
            link.cut()  # one side ended: end both


@pytest.fixture
def make_proxy(request: pytest.FixtureRequest) -> Iterator[Callable[[str], StoreProxy]]:
    """Proxies to the real stores; all closed after the test."""
    made: list[StoreProxy] = []

    def make(store: str) -> StoreProxy:
        parts = urlsplit(request.getfixturevalue(f"{store}_url"))
        proxy = StoreProxy(parts.hostname or LOOPBACK, parts.port or DEFAULT_PORTS[store])
        proxy.start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@dataclass
class Rig:
    proxy: StoreProxy
    target: TargetProcess

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.target.url, timeout=5.0)


StartRig = Callable[..., Rig]


@pytest.fixture
def start_rig(
    request: pytest.FixtureRequest,
    make_proxy: Callable[[str], StoreProxy],
    start_target: StartTarget,
) -> Iterator[StartRig]:
    """A target whose store connection runs through a proxy the test controls."""
    rigs: list[Rig] = []

    def start(store: str, **env: str) -> Rig:
        proxy = make_proxy(store)
        store_url = request.getfixturevalue(f"{store}_url")
        target = start_target(
            STORE=store,
            STORE_URL=proxy.url_for(store_url),
            STORE_NAMESPACE=unique_namespace(),
            STORE_TIMEOUT=str(STORE_TIMEOUT),
            STORE_POOL_SIZE=str(POOL_SIZE),
            SEED_USERS="10",
            **env,
        )
        rigs.append(Rig(proxy, target))
        return rigs[-1]

    yield start
    # Before start_target's teardown drops the namespace through the proxy.
    for rig in rigs:
        rig.proxy.forward()


# --- what clients see ---------------------------------------------------------------


@dataclass
class Credential:
    """A logged-in user of one mode: headers for /api/me, and hybrid's refresh cookie."""

    headers: dict[str, str]
    csrf: str | None = None
    refresh_cookie: str | None = None

    def refresh_headers(self) -> dict[str, str]:
        assert self.refresh_cookie is not None and self.csrf is not None
        return {"Cookie": f"rt={self.refresh_cookie}", "X-CSRF-Token": self.csrf}


def login(client: httpx.Client, user: str = "user1") -> Credential:
    answer = client.post("/auth/login", json={"username": user, "password": f"pw-{user}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    cookies = dict(answer.cookies)
    client.cookies.clear()  # every request below carries its credential explicitly
    if "access_token" in body:
        headers = {"Authorization": f"Bearer {body['access_token']}"}
    else:
        headers = {"Cookie": f"sid={cookies['sid']}"}
    return Credential(headers, body.get("csrf_token"), cookies.get("rt"))


def refresh(client: httpx.Client, credential: Credential) -> httpx.Response:
    answer = client.post("/auth/refresh", headers=credential.refresh_headers())
    client.cookies.clear()
    return answer


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def assert_fails_closed(answer: httpx.Response, elapsed: float, what: str) -> None:
    assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text}"
    assert answer.headers.get("retry-after") == "1", what
    assert answer.json()["error"] == "store_unavailable", what
    assert elapsed < FAIL_FAST, f"{what} took {elapsed:.2f}s to fail"


def wait_until_served(call: Callable[[], httpx.Response], what: str) -> httpx.Response:
    """Poll (bounded in count and time) until 200; until then only 503 is allowed."""
    deadline = time.monotonic() + RECOVERY
    answer = call()
    for _ in range(80):
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text}"
        time.sleep(0.1)
        answer = call()
    assert answer.status_code == 200, f"{what} not served again: {answer.text}"
    return answer


# down: refused and reset. stall: no answer, then the stalled connections are reset.
# half-open: no answer, and the stalled connections stay silent for good.
FAULTS = ("down", "stall", "half-open")
STORES = ("redis", "postgres")
POOL_SIZE = 4
BURST = 12  # concurrent requests, more than the pool holds


def inject(proxy: StoreProxy, fault: str) -> None:
    if fault == "down":
        proxy.down()
    else:
        proxy.stall()


def heal(proxy: StoreProxy, fault: str) -> None:
    proxy.forward(cut_stalled=fault != "half-open")


def burst(call: Callable[[], httpx.Response]) -> list[tuple[httpx.Response, float]]:
    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(lambda _: timed(call), range(BURST)))


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(
    "mode_env",
    [{"AUTH_MODE": "session"}, {"AUTH_MODE": "jwt", "JWT_REVOCATION": "blocklist"}],
    ids=["session", "jwt-blocklist"],
)
def test_store_faults_give_503_then_the_target_recovers(
    start_rig: StartRig, store: str, mode_env: dict[str, str]
) -> None:
    rig = start_rig(store, **mode_env)
    with rig.client() as client:
        credential = login(client)

        def me() -> httpx.Response:
            return client.get("/api/me", headers=credential.headers)

        assert me().status_code == 200
        for fault in FAULTS:
            inject(rig.proxy, fault)
            assert_fails_closed(*timed(me), f"{fault}: /api/me")
            if fault != "half-open":  # concurrent requests, also once the pool noticed
                for index, (answer, elapsed) in enumerate(burst(me)):
                    assert_fails_closed(answer, elapsed, f"{fault}: concurrent /api/me #{index}")
            assert_fails_closed(*timed(lambda: client.get("/health")), f"{fault}: /health")

            heal(rig.proxy, fault)
            served = wait_until_served(me, f"after {fault}: /api/me")
            assert served.json()["user"] == "user1"
            health = wait_until_served(lambda: client.get("/health"), f"after {fault}: /health")
            assert health.json()["status"] == "ok"
        assert rig.target.is_alive()


@pytest.mark.parametrize("store", STORES)
def test_hybrid_login_and_refresh_fail_closed_then_recover(
    start_rig: StartRig, store: str
) -> None:
    rig = start_rig(store, AUTH_MODE="hybrid")
    with rig.client() as client:
        credential = login(client)
        for fault in FAULTS:
            inject(rig.proxy, fault)
            assert_fails_closed(
                *timed(partial(refresh, client, credential)), f"{fault}: /auth/refresh"
            )
            logging_in = timed(
                lambda: client.post("/auth/login", json={"username": "user2",
                                                         "password": "pw-user2"})
            )
            assert_fails_closed(*logging_in, f"{fault}: /auth/login")
            # The short-lived access token is stateless here: still accepted.
            assert client.get("/api/me", headers=credential.headers).status_code == 200

            heal(rig.proxy, fault)
            # The failed refreshes did not spend the token: it still rotates.
            rotated = wait_until_served(
                partial(refresh, client, credential), f"after {fault}: /auth/refresh"
            )
            credential = Credential(
                {"Authorization": f"Bearer {rotated.json()['access_token']}"},
                credential.csrf,
                rotated.cookies["rt"],
            )
            assert client.get("/api/me", headers=credential.headers).status_code == 200


@pytest.mark.parametrize("store", STORES)
def test_target_with_unreachable_store_fails_to_start(
    store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    request.getfixturevalue(f"{store}_url")  # the same skip/fail rule as the other tests
    dead = free_port()  # nothing listens here
    url = (
        f"redis://{LOOPBACK}:{dead}/0"
        if store == "redis"
        else f"postgresql://postgres@{LOOPBACK}:{dead}/test"
    )
    env = {**FAST_KDF, "AUTH_MODE": "session", "STORE": store, "STORE_URL": url,
           "STORE_NAMESPACE": unique_namespace(), "STORE_TIMEOUT": str(STORE_TIMEOUT)}
    target = TargetProcess(env, log_path=tmp_path_factory.mktemp("dead") / "target.log")
    target.start()
    try:
        with pytest.raises(TargetFailed) as failed:
            target.wait_ready(timeout=20.0)
    finally:
        target.stop()
    message = str(failed.value)
    assert "exited with code" in message, message
    name = "Redis" if store == "redis" else "PostgreSQL"
    assert f"StoreUnavailable: {name} at" in message, message
    assert f"{LOOPBACK}:{dead}" in message, message
    assert "Application startup failed" in target.log_path.read_text()


def test_redis_restart_costs_no_503_once_it_is_back(start_rig: StartRig) -> None:
    """Connections that died while idle are replaced at their first use, not failed."""
    rig = start_rig("redis", AUTH_MODE="session")
    with rig.client() as client:
        credential = login(client)
        # Fill the pool with idle connections, then kill them all while Redis is away.
        for answer, _ in burst(lambda: client.get("/api/me", headers=credential.headers)):
            assert answer.status_code == 200
        rig.proxy.down()
        rig.proxy.forward()
        answers = [client.get("/api/me", headers=credential.headers) for _ in range(POOL_SIZE * 2)]
    assert [a.status_code for a in answers] == [200] * (POOL_SIZE * 2)


@pytest.mark.parametrize("fault", ["down", "half-open"])
def test_pubsub_node_fails_closed_without_its_channel_then_catches_up(
    start_rig: StartRig, start_target: StartTarget, redis_url: str, tmp_path: Path, fault: str
) -> None:
    """A node that cannot hear revocations answers 503, and reloads the list when back."""
    keys = tmp_path / "keys"
    write_key(keys, "HS256", generate_key("HS256"))
    env = {"AUTH_MODE": "jwt", "JWT_REVOCATION": "pubsub", "JWT_KEYS_DIR": str(keys)}
    rig = start_rig("redis", **env)
    direct = start_target(**env, STORE="redis", STORE_URL=redis_url, SEED_USERS="10",
                          STORE_NAMESPACE=rig.target.env["STORE_NAMESPACE"])
    with rig.client() as client:
        revoked, kept = login(client), login(client, "user2")
        assert client.get("/api/me", headers=revoked.headers).status_code == 200
        inject(rig.proxy, fault)
        # The hot path reads only memory: the loss is noticed by the subscription itself
        # (a reset at once; a silent one by the missed heartbeat, within ~1.5 s).
        deadline = time.monotonic() + 2 * (HEARTBEAT + STORE_TIMEOUT)
        answer = client.get("/api/me", headers=kept.headers)
        while answer.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            answer = client.get("/api/me", headers=kept.headers)
        assert_fails_closed(answer, 0.0, f"{fault}: /api/me without the channel")
        # Meanwhile another node revokes a token; the cut-off node cannot hear it.
        out = httpx.post(f"{direct.url}/auth/logout", headers=revoked.headers)
        assert out.json() == {"revoked": True}
        heal(rig.proxy, fault)
        wait_until_served(lambda: client.get("/api/me", headers=kept.headers),
                          f"after {fault}: /api/me")
        assert client.get("/api/me", headers=revoked.headers).status_code == 401
