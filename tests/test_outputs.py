"""Provenance time of outputs (s5p_lockdown.outputs.creation_time): now, or SOURCE_DATE_EPOCH,
which makes two runs write byte-identical files (tests/test_condor_workflow.py compares a pool
run with a local run that way)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.outputs import SOURCE_DATE_EPOCH, creation_time, provenance


def test_now_without_source_date_epoch(monkeypatch):
    monkeypatch.delenv(SOURCE_DATE_EPOCH, raising=False)
    assert abs(creation_time() - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_source_date_epoch_fixes_date_created(monkeypatch):
    monkeypatch.setenv(SOURCE_DATE_EPOCH, "1584489600")
    assert creation_time() == datetime(2020, 3, 18, tzinfo=timezone.utc)
    assert provenance()["date_created"] == "2020-03-18T00:00:00Z"


def test_bad_source_date_epoch_is_named(monkeypatch):
    monkeypatch.setenv(SOURCE_DATE_EPOCH, "yesterday")
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH='yesterday'"):
        creation_time()
