"""authbench run's sizing of the store-ceiling extra to the suite it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from authbench.cli import main
from authbench.commands.run import ceiling_config
from authbench.run.suite import SERVICES, load_suite


def test_quick_measures_the_redis_it_used_briefly() -> None:
    config = ceiling_config(load_suite("quick", SERVICES))
    assert config is not None
    assert (config.stores, config.seconds, config.repeats) == (("redis",), 1.5, 2)


def test_offbox_measures_for_as_long_as_its_windows_three_times() -> None:
    config = ceiling_config(load_suite("offbox", SERVICES))
    assert config is not None
    assert (config.stores, config.seconds, config.repeats) == (("redis",), 3.0, 3)


def test_a_suite_without_a_shared_store_measures_none() -> None:
    assert ceiling_config(load_suite("quick", available=())) is None


def test_every_store_a_suite_used_is_measured() -> None:
    config = ceiling_config(load_suite("scale", SERVICES))
    assert config is not None and config.stores == ("redis", "postgres")


def test_external_workers_refuse_a_windows_suite_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "quick", "--external-workers", "2", "--results", str(tmp_path)])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith('authbench run: --external-workers needs a suite with interleave = '
                           '"cells": quick keeps every configuration up at once')
    assert list(tmp_path.iterdir()) == []  # no run folder
