"""What each point of accuracy costs: tokens, FLOPs, generation seconds, sandbox seconds (Q1, Q2).

Costs are per problem and come from this run's own artifacts: mean prompt and completion tokens per
solution and per unit test, the engines' measured seconds per completion token, and the sandbox's
measured seconds per executed pair, charged only for the share of sampled tests that ran (an invalid
or repeated test is never executed). FLOPs use the standard dense-transformer estimate of
2 × parameters per token, prompt and completion counted separately (prefill and decode); prompt FLOPs
come twice, labelled: once per sample (no prefix sharing), and once per problem and role (an engine
with prefix caching, as vLLM's, prefills a problem's shared prompt once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from utscale.generation import engine_seconds
from utscale.models import EMBEDDED, HUB_MODELS


def parameter_count(model: str) -> int:
    """Parameters of a named model (0 when unknown, e.g. an API model)."""
    if model in EMBEDDED:
        return EMBEDDED[model].parameters
    return HUB_MODELS.get(model, ("", 0))[1]


@dataclass(frozen=True)
class CostModel:
    policy_parameters: int
    test_parameters: int
    solution_prompt_tokens: float  # means per sample
    solution_completion_tokens: float
    test_prompt_tokens: float
    test_completion_tokens: float
    solution_seconds_per_token: float  # engine wall seconds per completion token
    test_seconds_per_token: float
    seconds_per_pair: float  # sandbox seconds per executed (solution, test) pair
    executed_test_share: float = 1.0  # of the sampled unit tests, the share executed (valid and not repeated)

    @classmethod
    def from_tables(cls, solutions: pd.DataFrame, unit_tests: pd.DataFrame, executions: pd.DataFrame) -> CostModel:
        def per_token(table: pd.DataFrame) -> float:
            seconds = engine_seconds(table)
            tokens = table.completion_tokens.sum()
            return float(seconds / tokens) if tokens else 0.0

        return cls(
            policy_parameters=parameter_count(solutions.model.iloc[0]),
            test_parameters=parameter_count(unit_tests.model.iloc[0]),
            solution_prompt_tokens=float(solutions.prompt_tokens.mean()),
            solution_completion_tokens=float(solutions.completion_tokens.mean()),
            test_prompt_tokens=float(unit_tests.prompt_tokens.mean()),
            test_completion_tokens=float(unit_tests.completion_tokens.mean()),
            solution_seconds_per_token=per_token(solutions),
            test_seconds_per_token=per_token(unit_tests),
            seconds_per_pair=float(executions.duration_s.mean()) if len(executions) else 0.0,
            executed_test_share=executed_share(unit_tests, executions),
        )

    def cost(self, n: np.ndarray | float, m: np.ndarray | float) -> dict[str, np.ndarray]:
        """Per-problem cost of n solutions and m unit tests."""
        n, m = np.asarray(n, dtype=float), np.asarray(m, dtype=float)
        gen_tokens = n * self.solution_completion_tokens + m * self.test_completion_tokens
        prompt_flops = 2 * (n * self.solution_prompt_tokens * self.policy_parameters
                            + m * self.test_prompt_tokens * self.test_parameters)
        completion_flops = 2 * (n * self.solution_completion_tokens * self.policy_parameters
                                + m * self.test_completion_tokens * self.test_parameters)
        shared_prompt_flops = 2 * ((n > 0) * self.solution_prompt_tokens * self.policy_parameters
                                   + (m > 0) * self.test_prompt_tokens * self.test_parameters)
        return {
            "generated_tokens": gen_tokens,
            "test_tokens": m * self.test_completion_tokens,
            "prompt_flops": prompt_flops,
            "completion_flops": completion_flops,
            "flops": prompt_flops + completion_flops,
            "prompt_flops_prefix_shared": shared_prompt_flops,
            "flops_prefix_shared": shared_prompt_flops + completion_flops,
            "generation_seconds": n * self.solution_completion_tokens * self.solution_seconds_per_token
            + m * self.test_completion_tokens * self.test_seconds_per_token,
            "sandbox_seconds": n * m * self.executed_test_share * self.seconds_per_pair,
        }

    def record(self) -> dict[str, float]:
        return asdict(self)


def executed_share(unit_tests: pd.DataFrame, executions: pd.DataFrame) -> float:
    """Of the sampled unit tests, the share the sandbox executed: those with a verdict in the matrix."""
    if not len(unit_tests) or "test_id" not in executions:
        return 1.0
    return float(executions.groupby("task_id").test_id.nunique().sum() / len(unit_tests))


def cost_table(points: pd.DataFrame, model: CostModel) -> pd.DataFrame:
    """`points` has n_solutions, n_tests (average per problem), accuracy: adds every cost column."""
    costs = model.cost(points.n_solutions.to_numpy(), points.n_tests.to_numpy())
    return points.assign(**{k: v for k, v in costs.items()})


def pareto_front(costs: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Points no other point beats on both cost (lower) and accuracy (higher), bool mask."""
    order = np.lexsort((-accuracy, costs))
    front = np.zeros(len(costs), dtype=bool)
    best = -np.inf
    for i in order:
        if accuracy[i] > best:
            front[i] = True
            best = accuracy[i]
    return front


FRONTIER_KEEP = ["rule", "n_solutions", "n_tests", "accuracy", "ci_low", "ci_high"]


def frontier_table(points: pd.DataFrame, allocated: pd.DataFrame, online: pd.DataFrame, n_solutions: int,
                   n_tests: int, model: CostModel) -> pd.DataFrame:
    """Every way of spending compute the run measured, costed, with its Pareto front (cost: FLOPs):
    `points` the grid of N solutions x M tests for all (scaling_grid's summary), `allocated` the dynamic
    allocation rules by budget (allocation.compare_rules' table, equal allocation left out: it is a
    grid point), `online` the online stopping settings that ran to the full `n_tests` horizon
    (online.allocation_table's rows `online_*`), both at `n_solutions`."""
    grid = points.assign(rule="same tests for all")
    dynamic = allocated[allocated.rule != "equal"].rename(columns={"budget": "n_tests"}).assign(n_solutions=n_solutions)
    stopped = online[online.rule.str.startswith("online_") & (online.budget >= n_tests)]
    stopped = stopped.rename(columns={"tests_generated": "n_tests"}).assign(n_solutions=n_solutions)
    costed = cost_table(pd.concat([grid[FRONTIER_KEEP], dynamic[FRONTIER_KEEP], stopped[FRONTIER_KEEP]],
                                  ignore_index=True), model)
    costed["pareto"] = pareto_front(costed.flops.to_numpy(), costed.accuracy.to_numpy())
    return costed
