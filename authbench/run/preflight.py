"""Before any load: does each variant of an API start, answer, and give a credential?

One node of each variant, started and verified through its adapter, then stopped: a
service that never comes up, a login that returns no credential, a hot request that
is not rejected without one, each becomes one line before the run starts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from adapters.loading import AdapterFile
from adapters.schema import Adapter
from authbench.infra.service import ServiceFailed, ServiceGroup
from authbench.run.apirig import service_spec
from authbench.run.apisuite import floor_adapter
from authbench.run.verify import verify_api


def _first_line(text: str) -> str:
    """A multi-line failure (a log tail) as one line: its first and its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "no detail"
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def check_variant(adapter: Adapter, folder: Path) -> str | None:
    """Why the variant cannot be measured (one line), or None."""
    spec = service_spec(adapter)
    group = None if spec is None else ServiceGroup(spec, 1, folder)
    try:
        if group is not None:
            try:
                group.start()
            except ServiceFailed as exc:
                return f"the service did not start: {_first_line(str(exc))}"
        urls = group.node_urls if group is not None else list(adapter.urls)
        if not urls:
            return "no [service] to start and no urls to reach"
        for url in urls:
            result = verify_api(adapter, url)
            if not result.is_passed:
                return f"{url}: {result.reason}"
        return None
    finally:
        if group is not None:
            group.stop()


def preflight(api: AdapterFile, with_floor: bool) -> str | None:
    """The first variant that fails, as `FILE: variant NAME: why`; None if all pass."""
    variants = list(api.variants)
    floor = floor_adapter(api) if with_floor else None
    if floor is not None:
        variants.append(floor)
    with tempfile.TemporaryDirectory(prefix="authbench-preflight-") as scratch:
        for adapter in variants:
            why = check_variant(adapter, Path(scratch))
            if why is not None:
                return f"{api.path}: variant {adapter.variant.name!r}: {why}"
    return None
