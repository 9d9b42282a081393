"""What the Snakemake workflow will fetch from CDSE, computed from its own configuration.

:func:`workflow_fetch` reads the configuration as ``snakemake --configfile FILE…`` does, from
the workflow folder (``config/config.yaml`` first, then each file merged key by key, then
validated against ``workflow/schemas/config.schema.yaml``, which fills in the defaults), and
derives the days (whole ISO weeks, :func:`s5p_lockdown.plan.make_plan`), the grid's box, the
archive and the acquisition settings that the workflow's ``fetch_week`` jobs use. Relative
paths in the configuration are relative to the workflow folder, as for Snakemake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from s5p_lockdown.errors import ConfigError

BASE_CONFIG = Path("config") / "config.yaml"
SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


@dataclass(frozen=True)
class WorkflowFetch:
    """``days`` (UTC) over ``bbox`` ``(south, north, west, east)`` into ``archive``, with the
    settings mapping of :meth:`s5p_lockdown.acquire.AcquireSettings.from_mapping`."""

    days: list[date]
    bbox: tuple[float, float, float, float]
    archive: Path
    settings: dict


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a configuration is a mapping of keys, got {type(data).__name__}")
    return data


def workflow_config(config_files: list[Path], workflow_dir: Path) -> dict:
    """The validated workflow configuration (see the module docstring)."""
    import jsonschema
    from snakemake.utils import update_config, validate

    root = Path(workflow_dir)
    schema = root / SCHEMA
    if not schema.is_file():
        raise ConfigError(f"{root}: not the workflow folder (no {SCHEMA}); run from the project "
                          "root or give --workflow-dir")
    config: dict = {}
    for path in [root / BASE_CONFIG, *map(Path, config_files)]:
        update_config(config, _read(path))
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(yaml.safe_load(schema.read_text())).iter_errors(config)
    )
    if error is not None:
        key = ".".join(map(str, error.absolute_path)) or "(top level)"
        why = error.schema.get("description") if error.absolute_path else None
        raise ConfigError(f"{', '.join(map(str, config_files))}: {key}: {error.message}"
                          + (f" ({why})" if why else ""))
    validate(config, str(schema), set_default=True)  # fills in the defaults
    for section, key in (("source", "archive"), (None, "lockdown_dates")):
        holder = config[section] if section else config
        if holder.get(key) and not Path(holder[key]).is_absolute():
            holder[key] = str(root / holder[key])
    return config


def workflow_fetch(config_files: list[Path], workflow_dir: Path = Path(".")) -> WorkflowFetch:
    """What the workflow's ``fetch_week`` jobs will fetch; the configuration's source must be
    ``cdse``."""
    from s5p_lockdown.plan import make_plan

    config = workflow_config(config_files, workflow_dir)
    if config["source"]["kind"] != "cdse":
        raise ConfigError(f"source.kind: {config['source']['kind']!r} in "
                          f"{', '.join(map(str, config_files))}; acquiring needs 'cdse'")
    plan = make_plan(config)
    return WorkflowFetch(plan.days, plan.grid.bounds, Path(config["source"]["archive"]),
                         plan.cdse_settings)
