"""Session fixtures of the dashboard tests (imported by name in the test modules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard_support import REPO, VoilaServer, launch_browser, run_workflow, write_tiny_results

ARTIFACTS = REPO / "test-artifacts" / "dashboard"


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory) -> Path:
    """A small hand-written results directory (see dashboard_support.write_tiny_results)."""
    return write_tiny_results(tmp_path_factory.mktemp("tiny") / "results")


@pytest.fixture(scope="session")
def workflow_results(tmp_path_factory) -> Path:
    """Results of a real workflow run: synthetic archive, five countries, 0.5° grid."""
    return run_workflow(tmp_path_factory.mktemp("dashboard-workflow"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def voila_server(workflow_results, tmp_path_factory):
    """The dashboard on the workflow's results, with the production settings except the kernel
    cap: the browser tests open a page (a kernel) each, faster than unconnected kernels are
    culled; the cap itself is tested in test_dashboard_publish.py."""
    with VoilaServer(workflow_results, tmp_path_factory.mktemp("voila") / "voila.log",
                     extra_args=["--max-kernels", "64"]) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        yield chromium
        chromium.close()
