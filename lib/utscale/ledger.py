"""The claims ledger: every claim of docs/claims.md as one record (statement, the paper's number, the
figure that shows the evidence), the verdicts the analysis notebooks saved, and the table of where a run
departs from the paper's setting. The rules that reach the verdicts are in `claims`; the ledger's HTML
is in `report`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from utscale.claims import NOT_TESTABLE, TABLE1_GAINS, ClaimVerdict, table1_claim
from utscale.runs import Run


@dataclass(frozen=True)
class Claim:
    """A line of the ledger: the claim as the paper states it, the paper's number beside it (docs/method.md;
    "—" where the claim is qualitative), and the report's figure (`plots.save_figure`) that shows this
    run's evidence ("" for none)."""

    statement: str
    paper: str
    figure: str


CLAIMS: dict[str, Claim] = {
    "1": Claim("CodeRM-8B improves Llama3-8B by 18.43 points on HumanEval Plus (53.58 → 72.01)",
               "+18.43 (Table 1)", "bon_accuracy_vs_unit_tests"),
    "2": Claim("CodeRM-8B improves Llama3-70B by 4.95 points on HumanEval Plus",
               "+4.95 (Table 1)", "bon_accuracy_vs_unit_tests"),
    "3": Claim("CodeRM-8B improves GPT-4o-mini by 3.42 points on HumanEval Plus",
               "+3.42 (Table 1)", "bon_accuracy_vs_unit_tests"),
    "4": Claim("Dynamic unit-test scaling brings up to about 0.5 points on MBPP Plus at a fixed computational cost",
               "≈ +0.5 (Fig. 6, MBPP+)", "accuracy_vs_budget_by_allocation_rule"),
    "5": Claim("The number of unit tests correlates positively with the quality of the reward signal",
               "monotone curves (Fig. 2)", "bon_accuracy_vs_unit_tests"),
    "6": Claim("Scaling unit tests is more effective for harder problems",
               "larger gains in harder quintiles (Fig. 3)", "voting_gain_by_quintile"),
    "7": Claim("Gemma-2-27B-it matches Llama3.1-70B as a test generator when scaled to 100 unit tests per question",
               "Gemma-2-27B ≈ Llama3.1-70B at 100 tests (Fig. 2)", ""),
    "8": Claim("Unit-test majority voting is a standard best-of-N scheme",
               "—", "bon_accuracy_vs_unit_tests"),
    "9": Claim("The selected solution is the one that passes the most unit tests (majority voting)",
               "argmax of passes (Eq. 1)", "pass_matrix_example"),
    "R1": Claim("CodeT: dual execution agreement lifts CodeGen-Mono-16B to 36.7 pass@1 on HumanEval (sampled baseline 22.1)",
                "36.7 (CodeT paper); 22.1 random pick of the samples", "rerankers_full_matrix"),
    "Q1": Claim("How does scaling unit tests trade best-of-N accuracy against inference cost (tokens, FLOPs, seconds)?",
                "not studied (the paper fixes the budget)", "accuracy_vs_compute"),
    "Q2": Claim("How does the number of generated unit tests relate to the correctness of the pick, and what does it cost?",
                "monotone curves (Fig. 1-2), costs not reported", "bon_accuracy_vs_unit_tests"),
}


def save_verdicts(run: Run, notebook: str, verdicts: list[ClaimVerdict]) -> None:
    run.file(f"metrics/verdicts_{notebook}.json").write_text(
        json.dumps([asdict(v) for v in verdicts], indent=2, sort_keys=True) + "\n")


def load_verdicts(run: Run) -> dict[str, ClaimVerdict]:
    out = {}
    for path in sorted((run.path / "metrics").glob("verdicts_*.json")):
        for record in json.loads(path.read_text()):
            out[record["claim"]] = ClaimVerdict(**record)
    return out


def ledger(run: Run, gain: tuple[float, np.ndarray]) -> pd.DataFrame:
    """Every claim: text, verdict, evidence, reason. `gain`: voting minus random pick (`voting_gain`)."""
    saved = load_verdicts(run)
    verdicts = dict(saved)
    for claim in TABLE1_GAINS:
        verdicts[claim] = table1_claim(claim, run.config, gain)
    verdicts.setdefault("7", ClaimVerdict("7", NOT_TESTABLE, "one test generator per run",
                                     "compare a Gemma-2-27B-it run with a Llama3.1-70B run (python -m utscale sweep)"))
    for claim in CLAIMS:
        verdicts.setdefault(claim, ClaimVerdict(claim, NOT_TESTABLE, "the notebook that tests it has not run",
                                           "run the whole pipeline"))
    return pd.DataFrame([{"claim": c, "statement": claim.statement, "paper": claim.paper, "verdict": verdicts[c].verdict,
                          "evidence": verdicts[c].evidence, "reason": verdicts[c].reason, "figure": claim.figure}
                         for c, claim in CLAIMS.items()])


def cap_use(table: pd.DataFrame, cap: int, replay_tokenizer: str) -> str:
    """How many responses stopped at the token cap, as far as the run can know it. A live engine records
    why each response ended; replayed files do not (finish reason `unknown`), and their tokens are then
    counted by a proxy tokenizer, not the generating model's (CodeGen's tokenizer is on the model hub, out of
    reach offline), so a count over the cap in proxy tokens is not a count of responses that hit it."""
    unknown = int((table.finish_reason == "unknown").sum())
    if not unknown:
        return f"{cap}; {int((table.finish_reason == 'length').sum())} of {len(table)} responses hit it"
    text = f"{cap}; {unknown} of {len(table)} responses record no finish reason (replayed), so how many hit it is unknown"
    if replay_tokenizer:
        over = int((table.completion_tokens > cap).sum())
        text += (f"; {over} are over {cap} tokens in the proxy tokenizer ({replay_tokenizer}), which is not the "
                 "generating model's and cannot count its cap")
    return text


def deviations(run: Run) -> pd.DataFrame:
    """Where this run departs from the paper's setting, aspect by aspect, with this run's own counts."""
    cfg = run.config
    rows = [("benchmark", "HumanEval+, MBPP+, LiveCodeBench (all problems)",
             f"{cfg['BENCHMARK']} ({cfg['LIMIT'] or 'all'} problems)"),
            ("policy / test generator", "Llama3-8B/70B, GPT-3.5, GPT-4o-mini / CodeRM-8B (and baselines)",
             f"{cfg['POLICY_MODEL']} ({cfg['POLICY_ENGINE']}) / {cfg['TEST_MODEL']} ({cfg['TEST_ENGINE']})"),
            ("N solutions, M unit tests", "100, 100 (200 in the pioneer study)", f"{cfg['N_SOLUTIONS']}, {cfg['N_UNIT_TESTS']}"),
            ("resampling", "100 bootstrap samples (text); first n, m without replacement (code)",
             f"{cfg['PROTOCOL']}, {cfg['RESAMPLES']} resamples; intervals: bootstrap over problems")]
    for name, cap_key in (("solutions", "MAX_TOKENS_SOLUTION"), ("unit_tests", "MAX_TOKENS_TEST")):
        if run.has_table(name):
            rows.append((f"token cap, {name.replace('_', ' ')}", "2048 (repo config)",
                         cap_use(run.read_table(name), cfg[cap_key], cfg.get("REPLAY_TOKENIZER", ""))))
    if run.has_table("unit_tests"):
        sources = run.read_table("unit_tests").drop_duplicates("task_id").prompt_code_source.astype(str)
        kinds = sources.str.split(":").str[0].value_counts().to_dict()
        rows.append(("code in the unit-test prompt", "one fixed candidate solution per problem (never the ground truth)",
                     ", ".join(f"{k}: {v} problems" for k, v in sorted(kinds.items()))))
    features = "text-length features" if cfg["PROBE_FEATURES"] == "text" else \
        f"hidden states of {cfg['PROBE_MODEL'] or cfg['POLICY_MODEL']} (layer {cfg['PROBE_LAYER']})"
    rows.append(("difficulty probe's training data", "separate training problems (CodeFeedback, TACO) labelled by the policy",
                 f"the evaluation problems themselves, cross-fitted over {cfg['PROBE_FOLDS']} folds (no problem is "
                 f"predicted by a probe that saw it); {features}"))
    rows.append(("difficulty probe's training", "a two-layer feed-forward network trained end to end (soft-label BCE)",
                 f"the same shape and loss, but the hidden layer ({cfg['PROBE_WIDTH']} ReLU units) is drawn from the seed "
                 "and frozen, and only the output layer is fitted (L2, to a unique optimum in float64): a fit that "
                 "training end to end made chaotic in the inputs' last bits (docs/method.md §5.1)"))
    rows.append(("executor", "the authors' harness, 1 s per test", f"{cfg['SANDBOX_MODE']} mode, {cfg['TIMEOUT_S']} s per test, "
                 f"ground truth in {cfg['LABEL_MODE']} mode, {cfg['LABEL_TIMEOUT_S']} s"))
    return pd.DataFrame(rows, columns=["aspect", "paper", "this run"])
