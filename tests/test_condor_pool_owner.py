"""One local pool serves one checkout (issue #16, item 4), without starting a pool.

``workflow/scripts/condor-pool up`` from a second checkout must not reinstall the running
pool's editable package from that checkout (the running jobs would switch sources).  The script
is loaded as a module and pointed at a fake root whose venv records an editable install, the
way pip writes it (``direct_url.json``); ``master_pid`` stands for a running or stopped master.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest

from condor_fixtures import CONDOR_POOL, PROJECT_DIR


@pytest.fixture
def pool(tmp_path, monkeypatch):
    loader = importlib.machinery.SourceFileLoader("condor_pool_script", str(CONDOR_POOL))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    root = tmp_path / "root"
    monkeypatch.setattr(module, "NATIVE", False)
    monkeypatch.setattr(module, "ROOT", str(root))
    monkeypatch.setattr(module, "PROJECT_DIR", str(PROJECT_DIR))
    return module


def install_editable(pool, project: Path) -> None:
    """What ``pip install -e project`` leaves in the pool venv's site-packages."""
    dist = Path(pool.rp(pool.VENV + "/lib/python3.13/site-packages/s5p_lockdown-0.1.dist-info"))
    dist.mkdir(parents=True)
    (dist / "direct_url.json").write_text(json.dumps(
        {"url": project.as_uri(), "dir_info": {"editable": True}}))


def test_running_pool_of_another_checkout_is_not_taken_over(pool, tmp_path, monkeypatch):
    other = tmp_path / "other checkout"
    other.mkdir()
    install_editable(pool, other)
    assert pool.installed_project() == str(other)
    monkeypatch.setattr(pool, "master_pid", lambda: 4242)
    with pytest.raises(pool.PoolError) as refused:
        pool.check_pool_owner()
    message = str(refused.value)
    assert f"serves the checkout {other}" in message
    assert f"{other}/workflow/scripts/condor-pool down" in message
    assert "S5P_CONDOR_ROOT=" in message and "S5P_CONDOR_PORT=" in message
    # nor stopped from here (a refused `up` in a test fixture is followed by `down`)
    monkeypatch.setattr(pool, "stop_pool", lambda timer: pytest.fail("stopped another's pool"))
    monkeypatch.setattr(pool, "lock_path", lambda: str(tmp_path / "lock"))
    Path(pool.ROOT).mkdir(exist_ok=True)
    monkeypatch.setattr(pool.os, "geteuid", lambda: 0)
    with pytest.raises(pool.PoolError, match="serves the checkout"):
        pool.cmd_down()


def test_stopped_or_own_pool_is_used(pool, tmp_path, monkeypatch):
    assert pool.installed_project() is None  # nothing installed yet: a new pool
    pool.check_pool_owner()
    other = tmp_path / "other"
    other.mkdir()
    install_editable(pool, other)
    monkeypatch.setattr(pool, "master_pid", lambda: None)
    pool.check_pool_owner()  # stopped: this checkout takes it over (reinstalls its sources)
    monkeypatch.setattr(pool, "master_pid", lambda: 4242)
    monkeypatch.setattr(pool, "PROJECT_DIR", str(other))
    pool.check_pool_owner()  # running for this very checkout


def test_running_pool_of_a_deleted_checkout_is_taken_over(pool, tmp_path, monkeypatch):
    """A pool left running for a checkout that no longer exists (a removed clone) cannot serve
    it any more: another checkout may stop it or take it over."""
    gone = tmp_path / "removed-clone"
    gone.mkdir()
    install_editable(pool, gone)
    gone.rmdir()
    monkeypatch.setattr(pool, "master_pid", lambda: 4242)
    pool.check_pool_owner()
