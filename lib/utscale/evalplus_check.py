"""EvalPlus's correctness rule, as a self-contained program part: the source of this module is copied
into every HumanEval+ / MBPP+ ground-truth program (`utscale.evalplus_data.ground_truth`), where the
sandbox's judge runs it. It is importable too, so its behaviour is tested directly.

Ported from EvalPlus 0.3.1 (Apache-2.0, `evalplus/eval/__init__.py::unsafe_execute`,
`evalplus/eval/_special_oracle.py`, `evalplus/gen/util/__init__.py::trusted_exec`), rule for rule:
the expected output of each input is the canonical solution's on a deep copy of it; an output matches
when it equals the expected one, or, with a tolerance (the task's `atol`, raised to 1e-6 from the first
float-valued expected output on, as EvalPlus's loop does), has the same type, the same length and is
`np.allclose` with rtol 1e-7. MBPP+ and HumanEval/32 have EvalPlus's special oracles. One deliberate
difference, documented in docs/benchmarks.md: HumanEval/32 (`find_zero`) is judged by EvalPlus's own
oracle `abs(_poly(xs, out)) <= atol`, the rule its master branch uses; the OriginFmt files' test for it
raises a TypeError for every solution (evalplus#253).

Standard library and numpy only; every module-level name starts with `_evalplus_` so that, in an
executor mode where the program shares a namespace with the solution, nothing here shadows a
solution's name.
"""

import copy as _evalplus_copy
import math as _evalplus_math
import time as _evalplus_time

import numpy as _evalplus_np

# EvalPlus's per-input time limit (evalplus.config): max(1 s, 4x the reference's time on that input)
_evalplus_MIN_TIME_LIMIT, _evalplus_TIME_LIMIT_FACTOR = 1.0, 4.0
# MBPP+ tasks whose outputs are not serialisable: only "is the output not None" is compared
_evalplus_MBPP_OUTPUT_NOT_NONE_TASKS = ["check_str", "text_match_three", "text_starta_endb"]
# MBPP+ tasks compared as sets of their outputs' items
_evalplus_MBPP_OUTPUT_SET_EQ_TASKS = ["similar_elements", "find_char_long", "common_in_nested_lists",
                                      "extract_singly", "larg_nnum", "intersection_array", "find_dissimilar", "Diff"]


def _evalplus_poly(xs, x):
    """HumanEval/32's oracle: the polynomial with coefficients xs at x."""
    return sum([coeff * _evalplus_math.pow(x, i) for i, coeff in enumerate(xs)])


def _evalplus_surface_area(base_edge, height):
    """Mbpp/581's oracle."""
    slant_height = _evalplus_math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _evalplus_digit_distance_nums(num1, num2):
    """Mbpp/558's oracle: the numbers padded with zeros to the same length."""
    str1, str2 = str(num1), str(num2)
    width = max(len(str1), len(str2))
    return sum(abs(int(a) - int(b)) for a, b in zip(str1.zfill(width), str2.zfill(width)))


def _evalplus_is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    if isinstance(x, _evalplus_np.ndarray):
        return x.dtype == _evalplus_np.float64 or x.dtype == _evalplus_np.float32
    return False


def _evalplus_oracle(reference, entry_point, output_not_none):
    """The canonical solution as an oracle: for an input, its output on a deep copy of it (EvalPlus's
    `trusted_exec`) and the input's time limit from the reference's wall time on it, measured here, now
    (EvalPlus's `untrusted_check`). Asked input by input, so a solution rejected early never pays for
    the reference's outputs on the inputs after it."""
    namespace = {}
    exec(reference, namespace)
    fn = namespace[entry_point]

    def expected(inp):
        inp = _evalplus_copy.deepcopy(inp)
        started = _evalplus_time.perf_counter()
        out = fn(*inp)
        seconds = _evalplus_time.perf_counter() - started
        limit = max(_evalplus_MIN_TIME_LIMIT, _evalplus_TIME_LIMIT_FACTOR * seconds)
        return (out is not None if output_not_none else out), limit

    return expected


def _evalplus_check(dataset, entry_point, candidate, inputs, oracle, atol):
    """Raise at the first input whose output EvalPlus would reject (an exception of the candidate
    propagates as it is); return when every output is accepted. EvalPlus records every input, but a
    solution is correct only if all pass, so stopping at the first rejection (EvalPlus's own
    `fast_check`) gives the same verdict, and lets the sandbox's time limit and crash signals through
    untouched. A call that returns after its input's time limit (wall clock, as EvalPlus's; in the
    isolated sandbox, measured in the solution's process around the call) is rejected; one that never
    returns is ended by the sandbox's limit for the whole program. `oracle`: input → (expected output,
    time limit), `_evalplus_oracle`. `atol` carries over from input to input exactly as in EvalPlus's
    loop."""
    for i, inp in enumerate(inputs):
        exp, limit = oracle(inp)
        inp = _evalplus_copy.deepcopy(inp)
        started = _evalplus_time.perf_counter()
        out = candidate(*inp)
        # in the isolated sandbox the candidate is a stand-in whose call crosses to the solution's
        # process: the call's own time is the one measured there (moving a large output is not the
        # solution's time); elsewhere the wall time of the call here
        seconds = getattr(candidate, "utscale_call_seconds", _evalplus_time.perf_counter() - started)
        assert seconds <= limit, f"input {i}: {seconds:.2f} s, over its limit of {limit:.2f} s"
        # the "not None" tasks compare presence only: their outputs (re.Match) need not support ==, and
        # EvalPlus's `out == exp` there is overwritten before it is read
        not_none = dataset == "mbpp" and entry_point in _evalplus_MBPP_OUTPUT_NOT_NONE_TASKS
        exact_match = None if not_none else out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":  # Mbpp/164
                exact_match = exact_match or True
            elif entry_point == "sum_div":  # Mbpp/295
                exact_match = exact_match or out == 0
            elif entry_point == "surface_Area":  # Mbpp/581
                exact_match = exact_match or abs(out - _evalplus_surface_area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":  # Mbpp/558
                exact_match = exact_match or out == _evalplus_digit_distance_nums(*inp)
            elif entry_point in _evalplus_MBPP_OUTPUT_SET_EQ_TASKS:
                exact_match = set(out) == set(exp)
            elif entry_point in _evalplus_MBPP_OUTPUT_NOT_NONE_TASKS:
                exact_match = out == exp if isinstance(out, bool) else exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":  # HumanEval/32
            assert abs(_evalplus_poly(*inp, out)) <= atol, f"input {i}: not a zero of the polynomial"
            continue
        if atol == 0 and _evalplus_is_floats(exp):
            atol = 1e-6
        if not exact_match and atol != 0:
            assert type(out) == type(exp), f"input {i}: {type(out).__name__} returned, {type(exp).__name__} expected"  # noqa: E721
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp), f"input {i}: {len(out)} items returned, {len(exp)} expected"
            assert _evalplus_np.allclose(out, exp, rtol=1e-07, atol=atol), f"input {i}: not within atol {atol}"
        else:
            assert exact_match, f"input {i}: wrong output"
