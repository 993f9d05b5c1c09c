"""What a problem's tests show as they are revealed one by one: running sums read at round boundaries,
and SRank's ranking from the outputs the revealed tests bring (docs/method.md §8).

SRank (`rerankers.srank_kept`) ranks what solutions *returned* on the tests' inputs, not the pass matrix.
Revealing a test reveals its inputs (the calls of its assertions, or a `unittest` class's closed calls)
and its share of the agreement with expected values. `RevealedOutputs` holds, per problem and per column
of the pass cube, what that column brings; `srank_trajectory` scores every checkpoint of every order at
once and equals `srank_kept` on each revealed prefix (tests/test_online.py). Solutions with the same
outputs on every input and the same agreement from every test stay tied at every prefix, so SRank runs on
those groups (about 25 of a problem's 100 solutions on codet-humaneval), the clusters of a prefix being
groups that agree on every revealed input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from utscale.matrix import PassCube, granularity_of, rank_within
from utscale.outputs import RETURNED, OutputCube, assertion_links
from utscale.outputs import load as load_outputs
from utscale.rerankers import B4_RULES, srank_kept
from utscale.runs import Run

SRANK = "srank"  # `online.simulate`'s name for the ranking
BLOCK = 4_000_000  # elements of one [T, R, u, u] array: orders are scored in blocks of this size (memory only)


def at_checkpoints(values: np.ndarray, checkpoints: np.ndarray) -> np.ndarray:
    """Running sums over the revealed tests (the last axis, m) read at each checkpoint: [b, n, m] → [T, b, n],
    [b, m] → [T, b]."""
    running = np.concatenate([np.zeros((*values.shape[:-1], 1)), np.cumsum(values, axis=-1)], axis=-1)
    return np.ascontiguousarray(np.moveaxis(running[..., checkpoints], -1, 0))


@dataclass(frozen=True)
class RevealedOutputs:
    """Per problem (lists in the pass cube's problem order), what each column of the pass cube brings to
    SRank: keys int [u, K], each output group's returned codes (-1: no output) on the problem's inputs;
    group int [N]: each real solution's group; distinct bool [N]: the first solution with its text;
    reveals bool [M, K]: column j's test gives input k; matches float [M, u]: the weight of column j's
    expected values that each group's output equals; totals float [M]: the weight of its expected values.
    A column past a problem's tests brings nothing."""

    keys: list[np.ndarray]
    group: list[np.ndarray]
    distinct: list[np.ndarray]
    reveals: list[np.ndarray]
    matches: list[np.ndarray]
    totals: list[np.ndarray]


def _columns(executions: pd.DataFrame) -> dict[tuple[str, int], int]:
    """(task_id, test_id) → the pass cube's column (`PassCube.from_tables` ranks the executed tests)."""
    tests = executions[["task_id", "test_id"]].drop_duplicates()
    return dict(zip(zip(tests.task_id, tests.test_id.astype(int)), rank_within(tests, "test_id")))


def _contributions(run: Run) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(task_id, test_id, input_id): the inputs each test gives; (task_id, test_id, weight): the weight of
    its expected values; (task_id, test_id, solution_id, weight): the weight of those its solution matches.
    For CodeT's assertions, an assertion counts once per sample (`sources`), as its multiplicity does in
    `outputs.expected_agreement`; for `unittest` classes, a test that gave an input counts once and a
    solution matches it by passing it (`outputs.unit_test_agreement`)."""
    inputs = run.read_table("test_inputs")
    if not run.has_table("assertions"):
        gives = pd.DataFrame([(t, int(test), int(i)) for t, i, ids in zip(inputs.task_id, inputs.input_id, inputs.test_ids)
                              for test in json.loads(ids)], columns=["task_id", "test_id", "input_id"])
        tests = gives[["task_id", "test_id"]].drop_duplicates().assign(weight=1.0)
        executions = run.read_table("executions")
        passed = executions[executions.passed.astype(bool)].merge(tests, on=["task_id", "test_id"])
        return gives, tests, passed[["task_id", "test_id", "solution_id", "weight"]]
    assertions = run.read_table("assertions")
    samples = pd.DataFrame([(t, int(a), int(source[0])) for t, a, sources in
                            zip(assertions.task_id, assertions.assertion_id, assertions.sources)
                            for source in json.loads(sources)], columns=["task_id", "assertion_id", "test_id"])
    links = assertion_links(inputs)
    gives = links.merge(samples, on=["task_id", "assertion_id"])[["task_id", "test_id", "input_id"]]
    expected = run.read_table("expected_values")
    valued = expected[expected.status.eq(RETURNED)][["task_id", "assertion_id", "output"]]
    weighted = valued.merge(links, on=["task_id", "assertion_id"]).merge(samples, on=["task_id", "assertion_id"])
    tests = weighted.groupby(["task_id", "test_id"], as_index=False).size().rename(columns={"size": "weight"})
    outputs = run.read_table("outputs")
    returned = outputs[outputs.status.eq(RETURNED)][["task_id", "solution_id", "input_id", "output"]]
    hits = weighted.merge(returned, on=["task_id", "input_id", "output"])
    matched = hits.groupby(["task_id", "test_id", "solution_id"], as_index=False).size().rename(columns={"size": "weight"})
    return gives.drop_duplicates(), tests, matched


def revealed_outputs(run: Run, cube: PassCube) -> RevealedOutputs:
    """What each column of the run's unit-test pass cube (`matrix.load(run, "unit_test")`) brings to SRank."""
    output_cube: OutputCube = load_outputs(run)
    if output_cube.task_ids != cube.task_ids or not np.array_equal(output_cube.n_solutions, cube.n_solutions):
        raise ValueError("the run's outputs and its pass cube hold different problems or solutions")
    columns = _columns(run.read_table("executions"))

    def column(task_id: str, test_id: int) -> int:
        if (task_id, test_id) not in columns:
            raise ValueError(f"{task_id}: test {test_id} gives inputs but was never executed (no pass-cube column)")
        return columns[(task_id, test_id)]

    gives, tests, matched = _contributions(run)
    labels = run.read_table("labels")
    solution_rank = dict(zip(zip(labels.task_id, labels.solution_id), rank_within(labels, "solution_id")))
    m = cube.shape[2]
    result: dict[str, list[np.ndarray]] = {name: [] for name in ("keys", "group", "distinct", "reveals", "matches", "totals")}
    gives_of, tests_of, matched_of = ({t: g for t, g in table.groupby("task_id", sort=False)}
                                      for table in (gives, tests, matched))
    none = pd.DataFrame()
    for p, task_id in enumerate(cube.task_ids):
        n, k = int(cube.n_solutions[p]), int(output_cube.n_inputs[p])
        reveals, totals, per_solution = np.zeros((m, k), dtype=bool), np.zeros(m), np.zeros((m, n))
        for t, test, i in gives_of.get(task_id, none).itertuples(index=False):
            reveals[column(t, test), i] = True
        for t, test, weight in tests_of.get(task_id, none).itertuples(index=False):
            totals[column(t, test)] += weight
        for t, test, solution, weight in matched_of.get(task_id, none).itertuples(index=False):
            per_solution[column(t, test), solution_rank[(t, solution)]] += weight
        keys = np.where(output_cube.returned[p, :n, :k], output_cube.codes[p, :n, :k], -1)
        _, first, group = np.unique(np.concatenate([keys, per_solution.T], axis=1), axis=0,
                                    return_index=True, return_inverse=True)
        result["keys"].append(keys[first])
        result["group"].append(group.reshape(-1))
        result["distinct"].append(output_cube.distinct[p, :n])
        result["reveals"].append(reveals)
        result["matches"].append(per_solution[:, first])
        result["totals"].append(totals)
    return RevealedOutputs(**result)


def online_rankings(run: Run, cube: PassCube) -> dict[str, RevealedOutputs | None]:
    """The rankings notebook 06 replays the online orders under besides the vote, each with the `outputs` that
    `online.simulate` needs for it: CodeT's released rule, B4 at each prior, and SRank where the run
    recorded outputs and the cube's columns are its unit tests."""
    rankings: dict[str, RevealedOutputs | None] = {rule: None for rule in ["codet_released", *B4_RULES]}
    if run.has_table("outputs") and granularity_of(run) == "unit_test":
        rankings[SRANK] = revealed_outputs(run, cube)
    return rankings


def revealed_agreement(outputs: RevealedOutputs, p: int, shown: np.ndarray) -> np.ndarray:
    """Each output group's agreement with the expected values the columns `shown` bring, float [u] (0 when
    they bring none)."""
    total = outputs.totals[p][shown].sum()
    return outputs.matches[p][shown].sum(axis=0) / total if total else np.zeros(len(outputs.keys[p]))


def srank_after(outputs: RevealedOutputs, p: int, shown: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """`rerankers.srank_kept` on problem p's real solutions `rows` (default: all) after the columns `shown`:
    one matrix at a time, the rule `srank_trajectory` scores for every prefix at once (the benchmark's
    baseline and the tests' reference)."""
    rows = np.arange(len(outputs.group[p])) if rows is None else rows
    group = outputs.group[p][rows]
    codes = outputs.keys[p][group][:, outputs.reveals[p][shown].any(axis=0)]
    return srank_kept(codes, codes != -1, revealed_agreement(outputs, p, shown)[group],
                                outputs.distinct[p][rows])


def srank_trajectory(outputs: RevealedOutputs, p: int, order: np.ndarray, draw: np.ndarray, real: np.ndarray,
                     checkpoints: np.ndarray) -> np.ndarray:
    """SRank's kept solutions after each round, bool [T, R, n], for problem p revealed in `order` [R, m] with
    the drawn solution rows `draw` [R, n] (`real` [R, n]: a real solution, not padding): on each revealed
    prefix, `srank_after` on the drawn real solutions."""
    keys = outputs.keys[p]
    u, k = keys.shape
    t_count, resamples = len(checkpoints), order.shape[0]
    if u == 0:  # no real solution
        return np.zeros((t_count, resamples, draw.shape[1]), dtype=bool)
    member = np.where(real, draw, 0)
    group = np.where(real, outputs.group[p][member], -1)  # [R, n]
    # each resample's drawn solutions, and distinct ones, per group [R, u]
    flat = (np.arange(resamples)[:, None] * u + group)[real]
    count = np.bincount(flat, minlength=resamples * u).reshape(resamples, u).astype(np.float64)
    distinct = np.bincount(flat, weights=outputs.distinct[p][member][real], minlength=resamples * u).reshape(resamples, u)
    in_order = outputs.reveals[p][order]  # [R, m, K]
    seen = at_checkpoints(np.moveaxis(in_order, 1, 2).astype(np.float64), checkpoints) > 0  # [T, R, K]
    hits = at_checkpoints(np.moveaxis(outputs.matches[p][order], 1, 2), checkpoints)  # [T, R, u]
    total = at_checkpoints(outputs.totals[p][order], checkpoints)[..., None]  # [T, R, 1]
    agreement = np.divide(hits, total, out=np.zeros_like(hits), where=total > 0)
    answered = keys != -1
    equal = keys[:, None, :] == keys[None, :, :]  # [u, u, K]
    same_answer = (equal & answered[:, None, :]).reshape(u * u, k).T.astype(np.float64)
    differ = (~equal).reshape(u * u, k).T.astype(np.float64)
    # SRank's "all outputs the same" holds when every revealed input's key equals that of the first revealed
    reveal_time = np.where(in_order.any(axis=1), in_order.argmax(axis=1), order.shape[1])  # [R, K]
    first = keys[:, reveal_time.argmin(axis=1)].T if k else np.zeros((resamples, u), dtype=np.int64)  # [R, u]
    off_first = (keys[None, :, :] != first[:, :, None]).astype(np.float64)  # [R, u, K]
    kept = np.empty((t_count, resamples, u), dtype=bool)
    step = max(1, BLOCK // max(t_count * u * u, 1))
    for start in range(0, resamples, step):
        r = slice(start, min(start + step, resamples))
        kept[:, r] = _kept_groups(seen[:, r], agreement[:, r], count[r], distinct[r], same_answer, differ,
                                  answered, off_first[r])
    return np.take_along_axis(kept, np.maximum(group, 0)[None], axis=2) & real[None]


def _kept_groups(seen: np.ndarray, agreement: np.ndarray, count: np.ndarray, distinct: np.ndarray,
                 same_answer: np.ndarray, differ: np.ndarray, answered: np.ndarray, off_first: np.ndarray
                 ) -> np.ndarray:
    """SRank's top groups, bool [T, R, u], from the revealed inputs seen [T, R, K], each group's agreement
    [T, R, u], its drawn solutions `count` and distinct ones [R, u], and the pairwise key comparisons."""
    t_count, resamples, k = seen.shape
    u = count.shape[-1]
    flat = seen.reshape(t_count * resamples, k).astype(np.float64)
    shared = (flat @ same_answer).reshape(t_count, resamples, u, u)  # inputs both answered alike
    together = (flat @ differ).reshape(t_count, resamples, u, u) == 0  # one cluster: no revealed input differs
    revealed = seen.sum(axis=-1)  # [T, R]
    present = count[None] > 0
    some_answer = (flat @ answered.T.astype(np.float64)).reshape(t_count, resamples, u) > 0
    all_same = np.einsum("trk,ruk->tru", seen.astype(np.float64), off_first) == 0
    valid = present & some_answer & ~((revealed > 1)[..., None] & all_same)
    same = together & valid[..., :, None] & valid[..., None, :]
    representative = valid & (np.argmax(same, axis=-1) == np.arange(u))
    sizes = same.astype(np.float64) @ distinct[None, :, :, None]  # [T, R, u, 1]: distinct solutions of the cluster
    members = same.astype(np.float64) @ count[None, :, :, None]
    agree_sum = same.astype(np.float64) @ (count[None] * agreement)[..., None]
    sizes, members, agree_sum = sizes[..., 0], members[..., 0], agree_sum[..., 0]
    size_total = (sizes * representative).sum(axis=-1, keepdims=True)
    share = np.divide(sizes, size_total, out=sizes.copy(), where=size_total > 0)
    value = np.where(representative, share * np.divide(agree_sum, members, out=np.zeros_like(members),
                                                        where=members > 0), 0.0)
    interaction = np.where(same, 1.0, shared / np.maximum(revealed, 1)[..., None, None])
    scores = np.where(valid, (interaction @ value[..., None])[..., 0], 0.0)
    best = np.where(present, scores, -np.inf).max(axis=-1, keepdims=True)
    return present & np.isclose(scores, best, rtol=0, atol=1e-12)
