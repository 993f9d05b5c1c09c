"""Live online scaling: unit tests generated in rounds, each problem stopped when its vote is settled.

The stopping decision is checked on constructed matrices where the right stopping point is known; the
loop end to end on the ci profile's replayed generations: the engine is asked only for open problems'
next tests, stops agree with the simulation of the same order, a rerun generates and executes nothing,
and notebook 04 finds every verdict done."""

from __future__ import annotations

import numpy as np
import pytest
from utscale import execution, generation, live, online, runs, stopping
from utscale.engines import make_engine
from utscale.loading import write_problems
from utscale.matrix import PassCube


def leader_cube(tests: int = 8, solutions: int = 4, agree: bool = False) -> PassCube:
    """Solution 0 passes every test and the others none (or, `agree`, every solution passes all)."""
    passes = np.zeros((1, solutions, tests), dtype=bool)
    passes[0, 0] = True
    if agree:
        passes[0] = True
    return PassCube(("T/0",), passes, np.zeros((1, solutions), dtype=bool), np.array([solutions]), np.array([tests]))


@pytest.mark.parametrize(("name", "first_settled"), [
    # the margin rule with h = 8: the leader is t ahead with 8 - t tests still allowed, so 2t > 8
    ("online_margin_h8", 5),
    # stability k = 2: the kept set becomes {0} at t = 1 and is unchanged from then on
    ("online_stability_k2", 3),
    # the posterior rule: P(challenger better) = 0.5 ** (t + 1) <= 0.05 from t = 4
    ("online_posterior_a0.05", 4),
])
def test_a_clear_leader_is_settled_exactly_where_the_rule_says(name, first_settled):
    setting = stopping.Setting.from_name(name)
    cube = leader_cube()
    # the columns past `generated` are not generated yet: no solution passes them
    for generated in range(0, 9):
        revealed = cube.passes.copy()
        revealed[..., generated:] = False
        shown = PassCube(cube.task_ids, revealed, cube.correct, cube.n_solutions, cube.n_tests)
        expected = generated >= first_settled
        assert bool(live.settled(shown, np.array([generated]), setting, 1, 1)[0]) == expected, generated


def test_solutions_that_agree_are_never_settled_by_the_margin_before_its_horizon():
    setting = stopping.Setting("margin", 8)
    cube = leader_cube(agree=True)
    assert not live.settled(cube, np.array([7]), setting, 1, 1)[0]
    assert live.settled(cube, np.array([8]), setting, 1, 1)[0]


def test_setting_names_round_trip_and_bad_names_are_refused():
    for s in (stopping.Setting("margin", 8), stopping.Setting("stability", 2), stopping.Setting("posterior", 0.05)):
        assert stopping.Setting.from_name(s.name) == s
    for bad in ("margin_h8", "online_margin_k8", "online_guess_h8"):
        with pytest.raises(ValueError):
            stopping.Setting.from_name(bad)


class CountingEngine:
    """The replay engine, recording which (task_id, index) each call asked for."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests):
        self.calls.append([(r.task_id, r.index) for r in requests])
        return self.inner.generate(requests)


def prepared_run(**overrides):
    run = runs.open_run("ci", {"LIMIT": 4, **overrides})
    write_problems(run)
    generation.sample_solutions(run)
    return run


# settings that stop some of these four problems early on the ci fixtures (the embedded job's generations)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["online_margin_h4", "online_stability_k2"])
def test_live_rounds_ask_only_for_open_problems_match_the_simulation_and_resume(results_root, name):
    run = prepared_run(ONLINE_LIVE=name)
    engine = CountingEngine(make_engine(run.config, "test", run.read_table("problems")))
    table = live.generate_in_rounds(run, engine)
    spent = run.manifest()["online_generation"]
    by_problem = spent["tests_by_problem"]
    assert spent["tests_generated"] == len(table) == sum(by_problem.values()) < spent["equal_allocation_tests"]
    assert table.groupby("task_id").size().to_dict() == by_problem
    # each round asked each open problem for its next test only, and a stopped problem was never asked again
    asked = [key for call in engine.calls for key in call]
    assert len(asked) == len(set(asked)) == spent["tests_generated"]
    for i, call in enumerate(engine.calls):
        assert sorted(index for _, index in call) == [i] * len(call)
        assert {t for t, _ in call} == {t for t, k in by_problem.items() if k > i}
    assert [r["open"] for r in spent["rounds"]] == [len(c) for c in engine.calls]
    assert spent["total_completion_tokens"] == int(table.completion_tokens.sum()) > 0
    # the same decisions as the simulation over the full matrix revealed in generation order
    full = prepared_run(ONLINE_LIVE="")
    tests = generation.generate_unit_tests(full)
    execution.execute_run(full)
    cube = live.revealed_cube(sorted(by_problem), full.read_table("solutions"), tests, full.read_table("executions"), 8)
    trajectory = online.simulate(cube, [stopping.Setting.from_name(name)], 1, shuffle=False)
    stops = trajectory.checkpoints[trajectory.stops[name][0]]
    assert dict(zip(cube.task_ids, stops.tolist())) == by_problem
    # a rerun replays the rounds from the logs: nothing generated, the same table and decisions
    again = CountingEngine(make_engine(run.config, "test", run.read_table("problems")))
    assert live.generate_in_rounds(run, again).equals(table)
    assert again.calls == [] and run.manifest()["online_generation"]["tests_by_problem"] == by_problem
    # notebook 04 finds every unit-test verdict done by the rounds
    reports = execution.execute_run(run)
    assert reports["executions"].executed == 0 and reports["executions"].pairs > 0


def test_a_bad_live_rule_is_refused_before_any_work(results_root):
    from utscale import config

    with pytest.raises(config.ParameterError, match="ONLINE_LIVE"):
        config.resolve("ci", {"ONLINE_LIVE": "margin8"})
    with pytest.raises(config.ParameterError, match="per assertion"):
        config.resolve("codet-humaneval", {"ONLINE_LIVE": "online_margin_h8"})


def test_a_round_whose_tests_are_all_invalid_reveals_nothing_and_does_not_fail(results_root):
    """The verdict log is still empty when every test so far failed to extract (e.g. cut at the token cap)."""
    import pandas as pd

    run = prepared_run()
    solutions = run.read_table("solutions")
    tasks = sorted(solutions.task_id.unique())
    invalid = pd.DataFrame({"task_id": tasks, "test_id": 0, "code": None, "duplicate_of": pd.array([None] * len(tasks), "Int64")})
    cube = live.revealed_cube(tasks, solutions, invalid, pd.DataFrame(), 4)
    assert cube.shape == (len(tasks), 8, 4) and not cube.passes.any()
    assert not live.settled(cube, np.ones(len(tasks), int), stopping.Setting("margin", 4), 1, 1).any()


def test_a_round_where_no_executed_test_passes_reveals_nothing_and_does_not_fail(results_root):
    """Verdicts exist but none passes (the regenerated embedded job's first round): the filtered table is
    empty, and an empty selection must drop rows, not columns."""
    import pandas as pd

    run = prepared_run()
    solutions = run.read_table("solutions")
    tasks = sorted(solutions.task_id.unique())
    tests = pd.DataFrame({"task_id": tasks, "test_id": 0, "code": "class T: pass",
                          "duplicate_of": pd.array([None] * len(tasks), "Int64")})
    failed = pd.DataFrame({"task_id": tasks, "solution_id": 0, "test_id": 0, "passed": False})
    cube = live.revealed_cube(tasks, solutions, tests, failed, 4)
    assert cube.shape == (len(tasks), 8, 4) and not cube.passes.any()
    passed = failed.assign(passed=True)
    assert live.revealed_cube(tasks, solutions, tests, passed, 4).passes[:, 0, 0].all()
