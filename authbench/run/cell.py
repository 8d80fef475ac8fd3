"""One measured configuration, as a suite's matrix names it: what runs, with how much load.

Each value is checked by the Cell itself (a pydantic dataclass: types, choices, bounds,
no unknown keys); authbench.run.suite expands a suite file into cells and checks what
spans several keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass

from targets.settings import AUTH_MODES, JWT_ALGORITHMS, JWT_LIBRARIES, REVOCATIONS, STORE_KINDS

SCENARIOS = ("read", "login", "lifecycle", "floor", "revocation", "faults")
LOGOUTS = ("one", "all")  # revocation scenario: log out one credential, or everywhere
BALANCES = ("roundrobin", "sticky")
# Store and node faults injected inside a measured window (authbench/run/faults.py).
FAULTS = ("none", "redis-restart", "redis-restart-empty", "redis-slow", "postgres-terminate",
          "node-kill")
SERVICES = ("redis", "postgres")
# Scenarios whose every task sends one request: each arrival of a rate is one request.
OPEN_SCENARIOS = ("read", "floor")
# A rate "N%dearest" is a share of the dearest configuration's capacity, read off the
# first rounds' closed-loop windows: every configuration offered it runs below its own
# knee (authbench.run.calibration).
DEAREST = "dearest"


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value
    return check


Mode = Annotated[str, AfterValidator(one_of(AUTH_MODES))]
Store = Annotated[str, AfterValidator(one_of(STORE_KINDS))]
Alg = Annotated[str, AfterValidator(one_of(JWT_ALGORITHMS))]
Lib = Annotated[str, AfterValidator(one_of(JWT_LIBRARIES))]
Revocation = Annotated[str, AfterValidator(one_of(REVOCATIONS))]
Scenario = Annotated[str, AfterValidator(one_of(SCENARIOS))]
Balance = Annotated[str, AfterValidator(one_of(BALANCES))]
Logout = Annotated[str, AfterValidator(one_of(LOGOUTS))]
Fault = Annotated[str, AfterValidator(one_of(FAULTS))]


@dataclass(frozen=True, config=ConfigDict(strict=True, extra="forbid"))
class Cell:
    """One measured configuration: what runs, with how much load, for how long."""

    mode: Mode = "jwt"
    store: Store = "memory"
    alg: Alg = "HS256"
    lib: Lib = "pyjwt"  # JWT_LIB: the JWT library of the targets
    revocation: Revocation = "none"
    verify_cache: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    scenario: Scenario = "read"
    # Under a rate, the users are the bound on requests in flight.
    users: Annotated[int, Field(ge=1, le=100_000)] = 10
    spawn_rate: Annotated[float, Field(ge=0, le=100_000)] = 0.0  # users per second; 0: all at once
    nodes: Annotated[int, Field(ge=1, le=64)] = 1
    workers: Annotated[int, Field(ge=0, le=64)] = 0  # Locust worker processes; 0: one local process
    # Live sessions seeded into the store before the run.
    scale: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    duration: Annotated[float, Field(ge=1, le=86_400)] = 10.0
    warmup: Annotated[float, Field(ge=0, le=3_600)] = 2.0
    balance: Balance = "roundrobin"
    logout: Logout = "one"  # revocation scenario: "all" logs out everywhere
    access_ttl: Annotated[int, Field(ge=0, le=31_536_000)] = 0  # targets' ACCESS_TTL; 0: default
    fault: Fault = "none"  # FAULTS: what fails during the measured window
    # "": closed loop; "500": req/s offered; "50%": of the floor's capacity; "50%dearest":
    # of the dearest configuration's closed-loop req/s
    rate: str = ""
    # Round trip added between the targets and a Redis or PostgreSQL store (a delay line,
    # authbench netdelay); 0: direct. Cells that never touch a store keep it as a control.
    store_rtt_ms: Annotated[float, Field(ge=0, le=1_000)] = 0.0
    # A variant of an API described by an adapter file (authbench run --api), not a twin:
    # mode and store then say what the variant is, and authbench runs none of its store.
    api: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9_]*)?$")] = ""

    @field_validator("store_rtt_ms", mode="before")
    @classmethod
    def _rtt(cls, value: Any) -> Any:
        """Whole numbers too (TOML's 1 for 1.0); a bool is no round trip."""
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        """A number (req/s), "N%" or "N%dearest", kept as text: "500", "50%", "50%dearest"
        ("" is the closed loop)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
            return value
        text = str(value).strip().replace(" ", "")
        basis = DEAREST if text.endswith("%" + DEAREST) else ""
        text = text.removesuffix(basis)
        number, percent = (text[:-1], "%") if text.endswith("%") else (text, "")
        try:
            amount = float(number)
        except ValueError:
            raise ValueError("expected requests per second (a number) or a share of the "
                             "floor's capacity such as \"50%\" (of the dearest configuration's "
                             "closed-loop req/s: \"50%dearest\")") from None
        if not 0 < amount <= (1000 if percent else 10_000_000):
            raise ValueError("must be above 0 (and a share at most 1000%, a rate at most "
                             "10,000,000 req/s)")
        return f"{amount:g}{percent}{basis}"

    @property
    def rate_fraction(self) -> float | None:
        """The rate as a share of the floor's capacity ("50%" -> 0.5), else None."""
        return float(self.rate[:-1]) / 100 if self.rate.endswith("%") else None

    @property
    def dearest_fraction(self) -> float | None:
        """The rate as a share of the dearest configuration's closed-loop req/s
        ("50%dearest" -> 0.5), else None."""
        if not self.rate.endswith("%" + DEAREST):
            return None
        return float(self.rate.removesuffix("%" + DEAREST)) / 100

    def offered_rate(self, floor_capacity: float | None,
                     dearest_rps: float | None = None) -> float:
        """Requests per second this cell offers (0: closed loop)."""
        if not self.rate:
            return 0.0
        for fraction, basis, name in ((self.rate_fraction, floor_capacity, "the floor's capacity"),
                                      (self.dearest_fraction, dearest_rps,
                                       "the dearest configuration's closed-loop req/s")):
            if fraction is not None:
                if basis is None:
                    raise ValueError(f"rate {self.rate} needs {name} measured first")
                return fraction * basis
        return float(self.rate)

    @property
    def config(self) -> Cell:
        """The cell without its rate: what runs, whatever load it is offered."""
        return replace(self, rate="")

    @property
    def key(self) -> str:
        """A readable, unique name for the configuration (repeats share it)."""
        if self.api:
            return "-".join(["api", self.api, *self._load_parts()])
        parts = [self.mode]
        if self.mode != "none":
            parts.append(self.store)
        if self.mode in ("jwt", "hybrid"):
            parts.append(self.alg)
            if self.lib != "pyjwt":
                parts.append(self.lib)
            if self.revocation != "none":
                parts.append(self.revocation)
            if self.verify_cache:
                parts.append(f"cache{self.verify_cache}")
            if self.access_ttl:
                parts.append(f"ttl{self.access_ttl}")
        return "-".join(parts + self._load_parts())

    def _load_parts(self) -> list[str]:
        """The key's parts after what runs: the scenario and the load."""
        parts = [self.scenario]
        if self.logout != "one":
            parts.append(f"logout{self.logout}")
        parts += [f"u{self.users}", f"n{self.nodes}"]
        if self.spawn_rate:
            parts.append(f"r{self.spawn_rate:g}")
        if self.workers:
            parts.append(f"w{self.workers}")
        if self.scale:
            parts.append(f"s{self.scale}")
        if self.nodes > 1 and self.balance != "roundrobin":
            parts.append(self.balance)
        if self.fault != "none":
            parts.append(self.fault)
        if self.store_rtt_ms:
            parts.append(f"rtt{self.store_rtt_ms:g}ms")
        if self.rate:
            parts.append("at" + self.rate.replace("%", "pct"))
        return parts

    @property
    def is_delayed(self) -> bool:
        """Whether a delay line sits between this cell's targets and a network store."""
        return self.store_rtt_ms > 0 and self.store in SERVICES

    def needs(self) -> set[str]:
        """The services this cell cannot run without (an API's store is its own affair)."""
        return set() if self.api else {self.store} & set(SERVICES)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
