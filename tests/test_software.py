"""The software check of pool clients (s5p_lockdown.software): the Python version and the
package versions of the running interpreter against the project venv's, read from its files.

The real pool's venv is compared with the project venv in tests/test_condor_pool.py, and pool
outputs with local ones, byte for byte, in tests/test_condor_workflow.py.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from s5p_lockdown.software import (
    Software,
    SoftwareMismatchError,
    project_venv,
    require_same_software,
    running_software,
    venv_software,
)


def fake_venv(root: Path, python: str, packages: dict[str, str], key: str = "version") -> Path:
    """A venv's files as the check reads them: pyvenv.cfg and dist-info metadata."""
    site = root / "lib" / f"python{'.'.join(python.split('.')[:2])}" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text(f"home = /somewhere/bin\n{key} = {python}\n")
    for name, version in packages.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


def test_venv_software_reads_the_files(tmp_path):
    venv = fake_venv(tmp_path / "v", "3.11.7", {"numpy": "2.4.6", "Snakemake_Executor.Plugin": "1",
                                                 "pip": "25.0", "uv": "0.9"})
    assert venv_software(venv) == Software("3.11.7", {"numpy": "2.4.6",
                                                      "snakemake-executor-plugin": "1"})
    # uv writes version_info (with a release level sometimes): the first three parts count
    uv = fake_venv(tmp_path / "u", "3.13.5.final.0", {}, key="version_info")
    assert venv_software(uv).python == "3.13.5"


def test_differences_name_both_sides():
    a = Software("3.13.5", {"numpy": "2.5.5", "xarray": "1", "extra": "1"})
    b = Software("3.11.7", {"numpy": "2.4.6", "xarray": "1", "missing": "2"})
    assert a.differences(b) == ["Python 3.13.5 vs 3.11.7", "extra 1 vs -", "missing - vs 2",
                                "numpy 2.5.5 vs 2.4.6"]
    assert a.differences(a) == []


def test_running_software_is_this_interpreter():
    here = running_software()
    assert here.python == platform.python_version()
    import numpy

    assert here.packages["numpy"] == numpy.__version__ and "pip" not in here.packages


def test_same_software_passes(tmp_path):
    here = running_software()
    require_same_software(fake_venv(tmp_path / "v", here.python, here.packages))


def test_other_software_is_refused_in_one_sentence(tmp_path):
    here = running_software()
    packages = dict(here.packages, numpy="0.0.1")
    venv = fake_venv(tmp_path / "v", "3.0.1", packages)
    with pytest.raises(SoftwareMismatchError) as error:
        require_same_software(venv)
    message = str(error.value)
    assert message.count(". ") == 0 and message.endswith(".") and "\n" not in message
    assert f"Python {here.python} vs 3.0.1" in message
    assert f"numpy {here.packages['numpy']} vs 0.0.1" in message
    assert str(venv) in message and "condor-pool up" in message


def test_unreadable_venv_is_named(tmp_path):
    with pytest.raises(SoftwareMismatchError, match=str(tmp_path / "none" / "pyvenv.cfg")):
        venv_software(tmp_path / "none")


def test_project_venv_is_the_checkouts():
    """The tests run in the project venv (make venv): it compares equal to itself."""
    venv = project_venv()
    assert venv == Path(__file__).resolve().parents[1] / ".venv"
    assert Path(sys.prefix).resolve() == venv.resolve()
    require_same_software()
