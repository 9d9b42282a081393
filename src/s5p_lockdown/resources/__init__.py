"""Data files shipped with the package (see PROVENANCE.md in this folder)."""

from importlib.resources import as_file, files
from pathlib import Path


def resource_path(name: str) -> Path:
    """Filesystem path of a shipped resource file (the package is installed unzipped)."""
    with as_file(files(__name__).joinpath(name)) as path:
        return Path(path)
