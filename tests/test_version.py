"""The software version the outputs record, installed or not."""

from __future__ import annotations

import importlib.metadata

import s5p_lockdown


def _not_installed(name):
    raise importlib.metadata.PackageNotFoundError(name)


def test_version_of_transferred_sources_comes_from_the_submitting_side(monkeypatch):
    """A job of a pool without a shared filesystem imports the transferred sources (no package
    metadata): it records the version the workflow passed on, not 0+unknown."""
    installed = s5p_lockdown.__version__
    assert installed != "0+unknown"
    monkeypatch.setattr(importlib.metadata, "version", _not_installed)
    s5p_lockdown._installed_version.cache_clear()
    try:
        monkeypatch.setenv("S5P_LOCKDOWN_VERSION", installed)
        assert s5p_lockdown.__version__ == installed
        s5p_lockdown._installed_version.cache_clear()
        monkeypatch.delenv("S5P_LOCKDOWN_VERSION")
        assert s5p_lockdown.__version__ == "0+unknown"
    finally:
        s5p_lockdown._installed_version.cache_clear()


def test_version_option_answers_installed_or_not(monkeypatch):
    """``s5p-lockdown --version`` prints the package's version, and still answers from a source
    tree that is not installed (click's own option read the package metadata and raised)."""
    from click.testing import CliRunner

    from s5p_lockdown.cli import cli

    installed = s5p_lockdown.__version__
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output == f"s5p-lockdown {installed}\n"
    monkeypatch.setattr(importlib.metadata, "version", _not_installed)
    monkeypatch.delenv("S5P_LOCKDOWN_VERSION", raising=False)
    s5p_lockdown._installed_version.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["--version"])
        assert result.exit_code == 0 and result.output == "s5p-lockdown 0+unknown\n"
    finally:
        s5p_lockdown._installed_version.cache_clear()
