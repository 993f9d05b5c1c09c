from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from utscale import compute


def test_cost_model_from_tables_and_flops():
    solutions = pd.DataFrame({"model": ["qwen2.5-coder-0.5b-instruct"] * 4, "prompt_tokens": [100] * 4,
                              "completion_tokens": [50, 50, 100, 100], "latency_s": [10.0, 10.0, 5.0, 5.0]})
    tests = pd.DataFrame({"model": ["coderm-8b"] * 2, "prompt_tokens": [300, 300], "completion_tokens": [200, 200],
                          "latency_s": [4.0, 4.0]})
    executions = pd.DataFrame({"task_id": ["T/0", "T/0"], "test_id": [0, 0], "duration_s": [0.001, 0.003]})
    model = compute.CostModel.from_tables(solutions, tests, executions)
    assert model.executed_test_share == 0.5  # one of the two sampled tests ran (the other was invalid)
    assert model.solution_seconds_per_token == pytest.approx(15 / 300)  # two batches: 10 s + 5 s
    assert model.test_parameters == 8_030_261_248
    c = model.cost(2, 10)
    assert c["generated_tokens"] == pytest.approx(2 * 75 + 10 * 200)
    assert c["prompt_flops"] == pytest.approx(2 * (2 * 100 * model.policy_parameters + 10 * 300 * 8_030_261_248))
    assert c["sandbox_seconds"] == pytest.approx(20 * 0.5 * 0.002)
    # prefix sharing: each problem's policy prompt and test prompt prefilled once
    assert c["prompt_flops_prefix_shared"] == pytest.approx(2 * (100 * model.policy_parameters + 300 * 8_030_261_248))
    assert c["flops_prefix_shared"] == pytest.approx(c["prompt_flops_prefix_shared"] + c["completion_flops"])
    assert model.cost(2, 0)["prompt_flops_prefix_shared"] == pytest.approx(2 * 100 * model.policy_parameters)
    assert compute.parameter_count("gpt-4o-mini") == 0


def test_pareto_front():
    costs = np.array([1.0, 2.0, 3.0, 2.0, 4.0])
    acc = np.array([50.0, 60.0, 55.0, 60.0, 70.0])
    assert compute.pareto_front(costs, acc).tolist() == [True, True, False, False, True]


def test_the_frontier_table_costs_every_way_of_spending_and_marks_its_front():
    """Grid points, the dynamic rules (equal allocation is a grid point already) and the online settings
    that ran to the full horizon, at the run's N: each costed, and the front is the cheapest way to each
    accuracy."""
    solutions = pd.DataFrame({"model": ["qwen2.5-coder-0.5b-instruct"] * 2, "prompt_tokens": [100, 100],
                              "completion_tokens": [50, 50], "latency_s": [1.0, 1.0]})
    tests = pd.DataFrame({"model": ["qwen2.5-coder-0.5b-instruct"] * 2, "prompt_tokens": [300, 300],
                          "completion_tokens": [200, 200], "latency_s": [1.0, 1.0]})
    executions = pd.DataFrame({"task_id": ["T/0", "T/0"], "test_id": [0, 1], "duration_s": [0.001, 0.001]})
    model = compute.CostModel.from_tables(solutions, tests, executions)
    interval = {"ci_low": 0.0, "ci_high": 100.0}
    points = pd.DataFrame([{"n_solutions": 4, "n_tests": m, "accuracy": a, **interval}
                           for m, a in ((0, 40.0), (2, 50.0), (4, 55.0))])
    allocated = pd.DataFrame([{"rule": r, "budget": 2, "accuracy": a, **interval}
                              for r, a in (("equal", 50.0), ("oracle", 60.0), ("probe", 45.0))])
    online = pd.DataFrame([{"rule": r, "budget": b, "tests_generated": t, "accuracy": a, **interval}
                           for r, b, t, a in (("online_a", 4, 1.5, 54.0), ("online_a", 2, 1.0, 51.0),
                                              ("equal", 4, 4.0, 55.0))])
    table = compute.frontier_table(points, allocated, online, 4, 4, model)
    assert table.rule.tolist() == ["same tests for all"] * 3 + ["oracle", "probe", "online_a"]
    assert table.n_tests.tolist() == [0, 2, 4, 2, 2, 1.5]
    assert (table.n_solutions == 4).all()
    assert table.flops.tolist() == [model.cost(4, m)["flops"] for m in table.n_tests]
    # the front: no tests (cheapest), the online setting (cheaper than 2 tests, better than none), the oracle
    assert table.loc[table.pareto, "rule"].tolist() == ["same tests for all", "oracle", "online_a"]
