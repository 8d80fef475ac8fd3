"""What a Locust worker and its master say to each other, beyond Locust's own messages.

Pure and gevent-free (authbench's worker command imports it before it becomes Locust):
the message names, the version both sides must run, the environment a master hands to
its workers, and how a window's data is cut into messages of bounded size and put back
together.

A window's data (the histograms and counts loadtests.hdr would write to a file) is one
JSON text, ASCII only, so characters are bytes: it travels as chunks of at most
CHUNK_CHARACTERS, each a message {"seq", "index", "count", "text"} that Locust sends
msgpack-encoded with a few dozen bytes around it. The master joins a window's chunks
once it holds all of them, whatever order they came in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

HELLO_MESSAGE = "authbench_hello"  # worker -> master: who it is, which authbench it runs
WELCOME_MESSAGE = "authbench_welcome"  # master -> worker: its version and environment
REFUSED_MESSAGE = "authbench_refused"  # master -> worker: not the master's version
CHUNK_MESSAGE = "authbench_window_data"  # worker -> master: a window's data, in pieces
CHUNK_CHARACTERS = 192 * 1024  # a message stays under 256 KiB with its envelope
# The settings a scenario reads at import (loadtests.common, revocation, floor, ...): a
# worker takes its master's, so a worker on another host needs nothing but the address.
# Paths on the master's host (AUTHBENCH_CONTROL, _STATUS, _HDR_DIR, _API) are not sent.
LOCAL_ONLY = ("AUTHBENCH_CONTROL", "AUTHBENCH_STATUS", "AUTHBENCH_HDR_DIR", "AUTHBENCH_API")
REMOTE_CONTROL = "remote"  # a worker's AUTHBENCH_CONTROL: its master forwards the windows


def authbench_version() -> str:
    """The installed authbench's version, as both ends of a master and worker see it."""
    try:
        return metadata.version("authbench")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def mismatch(master: str, worker: str) -> str:
    """Why a worker cannot serve its master: they run different authbench versions."""
    return f"master runs authbench {master}, this worker runs {worker}"


def mismatch_line(master: str, worker: str) -> str:
    """The one line a worker prints when its master runs another authbench."""
    return f"authbench worker: {mismatch(master, worker)}"


def scenario_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The AUTHBENCH_* settings a master hands to its workers."""
    return {k: v for k, v in environ.items()
            if k.startswith("AUTHBENCH_") and k not in LOCAL_ONLY}


def split(text: str, bound: int = CHUNK_CHARACTERS) -> list[str]:
    """text in pieces of at most bound characters (one piece for an empty text)."""
    if bound < 1:
        raise ValueError(f"chunk bound {bound}: expected 1 or more characters")
    return [text[i:i + bound] for i in range(0, len(text), bound)] or [""]


def chunk_messages(seq: int, body: dict[str, Any],
                   bound: int = CHUNK_CHARACTERS) -> list[dict[str, Any]]:
    """A window's data as the messages that carry it."""
    pieces = split(json.dumps(body, ensure_ascii=True), bound)
    return [{"seq": seq, "index": i, "count": len(pieces), "text": piece}
            for i, piece in enumerate(pieces)]


@dataclass
class Reassembly:
    """One sender's chunks, per window, until each window's are all in."""

    pieces: dict[int, dict[int, str]] = field(default_factory=dict)

    def add(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """Take a chunk; the window's data once its last piece is in, else None."""
        seq, count = int(chunk["seq"]), int(chunk["count"])
        held = self.pieces.setdefault(seq, {})
        held[int(chunk["index"])] = str(chunk["text"])
        if len(held) < count:
            return None
        del self.pieces[seq]
        body: dict[str, Any] = json.loads("".join(held[i] for i in range(count)))
        return body
