"""The load stage (notebook 01): the run's benchmark slice stored as its `problems` table.

Apart from `benchmarks`, which knows benchmarks and nothing of runs, so that the schema (`config`),
which lists the benchmarks, and the runs, which read the schema, import one way."""

from __future__ import annotations

from typing import Any

import pandas as pd

from utscale import benchmarks
from utscale.runs import Run


def write_problems(run: Run) -> pd.DataFrame:
    """Load the run's benchmark slice and store it as the run's `problems` table (hash in the manifest)."""
    loaded = benchmarks.load_benchmark(run.config["BENCHMARK"], run.config["BENCHMARK_PATH"], run.config["LIMIT"])
    table = loaded.table()
    run.write_table("problems", table, key=["task_id"])
    entry: dict[str, Any] = {"source": loaded.source, "sha256": loaded.source_sha256}
    if loaded.release is not None:
        entry["release"] = dict(loaded.release)
    run.update_manifest(hashes={"problems": entry})
    return run.read_table("problems")
