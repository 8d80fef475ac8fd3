"""A suite's extras: measurements it asks for once per run, beside its cells.

The runner knows them only by this shape; the CLI hands it the ones it has
(RunOptions.extras), so the run package imports nothing of the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SuiteExtra:
    """A measurement a suite asks for once per run (its `extras`), beside its cells."""

    filename: str  # what it writes into the run folder; a resumed run that has it skips it
    description: str
    # (run folder, store URL by kind, a progress line): measure, and write filename
    measure: Callable[[Path, Mapping[str, str], Callable[[str], None]], None]
