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
