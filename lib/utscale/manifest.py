"""A run's `manifest.json`: one schema for every key, and the only reader and writer of the file.

Seven modules record what they did in the manifest; without one schema a misspelt section would land
silently beside the right one, and a reader could not tell a missing record from a misnamed one. Every
top-level key is declared here, with its type and the module that writes it (docs/design.md, "The
manifest"); a manifest with an unknown key, a missing required key or a value of the wrong type is
refused on read and on write.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Required, TypedDict, get_origin, get_type_hints

from utscale.tables import atomic_write_text

# No `from __future__ import annotations` in this module: it would hide `Required` from TypedDict, and
# every key of the manifest would count as optional.


class ManifestError(ValueError):
    """A manifest that does not follow the schema: the message names the file and the keys."""


class Manifest(TypedDict, total=False):
    """The keys of a run's manifest. Required ones are written when the run is created."""

    # runs.open_run, when the run is created
    run_id: Required[str]
    profile: Required[str]
    config: Required[dict[str, Any]]  # every parameter of the schema (config.SCHEMA)
    config_sha256: Required[str]
    created: Required[str]  # ISO date and time, UTC
    seeds: Required[dict[str, int]]
    git: Required[dict[str, Any]]  # commit and dirty state (runs.git_state), renewed by every stage
    versions: Required[dict[str, str]]  # package versions, renewed by every stage
    machine: Required[dict[str, Any]]  # where the run was created
    hashes: Required[dict[str, Any]]  # sha256 of the inputs (problems' source, replay files)
    timings: Required[dict[str, Any]]  # stage -> started, seconds (runs.Run.stage)
    # runs: parameters added to the schema after the run was created; tables kept within drift tolerance
    config_migrations: list[dict[str, Any]]
    drift: dict[str, Any]
    # generation: each role's model, engine and CPU plan; the chunks a long generation was made in
    models: dict[str, Any]
    generation_chunks: list[dict[str, Any]]
    # execution: sandbox settings and throughput; verdicts computed again under other settings
    sandbox: dict[str, Any]
    recomputed: list[dict[str, Any]]
    # live: online stopping while generating (ONLINE_LIVE)
    online_generation: dict[str, Any]
    # difficulty: where the probe's features came from
    probe_features: dict[str, Any]
    # pipeline: when each notebook ran, and whether all did; report: when the report was rendered
    notebooks: dict[str, str]
    completed: bool
    report_rendered: str


FIELDS: dict[str, Any] = get_type_hints(Manifest)
REQUIRED: frozenset[str] = Manifest.__required_keys__


def check(manifest: Mapping[str, Any], where: str | Path) -> Manifest:
    """The manifest, if it follows the schema; ManifestError naming `where` and the offending keys if not."""
    unknown = sorted(set(manifest) - set(FIELDS))
    missing = sorted(REQUIRED - set(manifest))
    wrong = sorted(key for key, value in manifest.items() if key in FIELDS
                   and not isinstance(value, get_origin(FIELDS[key]) or FIELDS[key]))
    if unknown or missing or wrong:
        problems = [f"{label}: {keys}" for label, keys in (("unknown keys", unknown), ("missing keys", missing),
                                                            ("values of the wrong type", wrong)) if keys]
        raise ManifestError(f"{where}: not a utscale manifest ({'; '.join(problems)}; the schema: utscale.manifest)")
    return Manifest(**manifest)  # type: ignore[typeddict-item]


def read(path: Path) -> Manifest:
    return check(json.loads(path.read_text()), path)


def write(path: Path, manifest: Mapping[str, Any]) -> None:
    """Checked, then written atomically with sorted keys (a diff between two runs is a diff of facts)."""
    atomic_write_text(path, json.dumps(dict(check(manifest, path)), indent=2, sort_keys=True) + "\n")


def merge(manifest: Manifest, sections: Mapping[str, Any]) -> Manifest:
    """The manifest with `sections` merged in: a dict section merges one level deep into the stored one
    (each stage adds its own entries), anything else replaces it."""
    merged: dict[str, Any] = dict(manifest)
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        else:
            merged[name] = value
    return merged  # type: ignore[return-value]
