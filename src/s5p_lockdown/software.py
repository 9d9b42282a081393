"""The software a run uses (Python version and package versions), and the check that pool jobs
use the same as local runs.

Local runs use the project venv (``<checkout>/.venv``, made by ``make venv``).  Jobs of an
HTCondor pool run the interpreter of the client that submits them (``sys.executable``); on the
project's local test pool that is the pool's own venv, which ``workflow/scripts/condor-pool up``
builds as a copy of the project venv: the same Python build, the exact package versions of
``pip freeze`` (profiles/README.md, "Same software as local runs").  Another Python or another
numpy gives other floating-point results (e.g. 1e-14 relative in the hotspot statistics), so
before a client submits anything (:func:`require_same_software`, called by
:func:`s5p_lockdown.condor.require_pool` and by :mod:`s5p_lockdown.batch`) the running software
is compared with the project venv's, and a difference stops the client with one sentence.

Versions are compared as installed: the Python version (``platform.python_version()``; in a
venv's ``pyvenv.cfg``, ``version``/``version_info``) and the version of every distribution in
``site-packages`` by its normalised name, except the installers (:data:`INSTALLERS`), which no
job imports.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import re
from pathlib import Path

from s5p_lockdown.errors import S5PLockdownError

#: Distributions left out of the comparison: installers, never imported by a job.
INSTALLERS = frozenset({"pip", "setuptools", "wheel", "uv"})

#: The project venv, relative to the checkout that holds this package (editable install).
PROJECT_VENV = ".venv"

#: What a client with other software than the project venv should do.
REBUILD = ("rebuild the pool's venv from the project venv with `workflow/scripts/condor-pool up` "
           "(the local test pool), or submit from the project venv")


class SoftwareMismatchError(S5PLockdownError):
    """The client would submit jobs that run other software than the project venv."""


@dataclasses.dataclass(frozen=True)
class Software:
    """A Python version and ``{normalised distribution name: version}``."""

    python: str
    packages: dict[str, str]

    def differences(self, other: Software) -> list[str]:
        """What differs from ``other``, as ``"name self-version vs other-version"`` (``-`` for
        missing), the Python version first, then packages by name."""
        out = [f"Python {self.python} vs {other.python}"] if self.python != other.python else []
        for name in sorted(self.packages.keys() | other.packages.keys()):
            mine, theirs = self.packages.get(name, "-"), other.packages.get(name, "-")
            if mine != theirs:
                out.append(f"{name} {mine} vs {theirs}")
        return out


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _packages(distributions) -> dict[str, str]:
    packages = {}
    for dist in distributions:
        name = dist.metadata["Name"]
        if name and normalise(name) not in INSTALLERS:
            packages[normalise(name)] = dist.version
    return packages


def running_software() -> Software:
    """The software of this interpreter."""
    return Software(platform.python_version(), _packages(importlib.metadata.distributions()))


def venv_software(venv: str | Path) -> Software:
    """The software of the venv in ``venv``, read from its files (without running it)."""
    venv = Path(venv)
    cfg = venv / "pyvenv.cfg"
    try:
        text = cfg.read_text()
    except OSError as error:
        raise SoftwareMismatchError(f"{cfg}: cannot read the venv's configuration: "
                                    f"{error.strerror}") from None
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    settings = {k.strip(): v.strip() for k, v in settings.items()}
    python = settings.get("version_info") or settings.get("version")
    if not python:
        raise SoftwareMismatchError(f"{cfg}: no Python version (key version_info or version)")
    python = ".".join(python.split(".")[:3])
    site = sorted(venv.glob("lib/python3*/site-packages"))
    return Software(python, _packages(importlib.metadata.distributions(path=[str(s) for s in site])))


def project_venv() -> Path | None:
    """The project venv of the checkout this package is imported from (an editable install),
    or None (an installed package, or a checkout without one)."""
    venv = Path(__file__).resolve().parents[2] / PROJECT_VENV
    return venv if (venv / "pyvenv.cfg").is_file() else None


def require_same_software(venv: str | Path | None = None, *, rebuild: str = REBUILD) -> None:
    """Raise :class:`SoftwareMismatchError` (one sentence naming both sides, the first
    differences and ``rebuild``, what to run) when this interpreter's software differs from
    the venv ``venv`` (default: :func:`project_venv`; nothing to compare without one)."""
    venv = Path(venv) if venv is not None else project_venv()
    if venv is None:
        return
    here, there = running_software(), venv_software(venv)
    differences = here.differences(there)
    if differences:
        shown = ", ".join(differences[:5])
        more = f" and {len(differences) - 5} more" if len(differences) > 5 else ""
        raise SoftwareMismatchError(
            f"Pool jobs would run other software than local runs (this client vs the project "
            f"venv {venv}: {shown}{more}), so their results could differ: {rebuild}.")
