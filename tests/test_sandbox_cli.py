"""The sandbox command line: the documented input/output contract, bad lines, resume."""

from __future__ import annotations

import json
import subprocess
import sys

from utscale.sandbox.cli import content_key

GOOD = "def add(a, b):\n    return a + b\n"
TEST = "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(add(2, 3), 5)\n"


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "utscale.sandbox", "run", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_contract_bad_lines_and_sorted_output(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [
        {"id": "p10", "solution": GOOD, "test": TEST},
        {"id": "p2", "solution": "def add(a, b):\n    return 0\n", "test": TEST},
        "{not json",
        {"id": "p3", "solution": GOOD},
        {"id": "p10", "solution": GOOD, "test": TEST},
    ])
    proc = run_cli("--input", src, "--output", out, "--timeout", "2", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    rows = read(out)
    assert [r["id"] for r in rows] == ["line-3", "line-5", "p2", "p3", "p10"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["p10"]["passed"] is True and by_id["p10"]["status"] == "pass" and by_id["p10"]["tests_run"] == 1
    assert by_id["p2"]["passed"] is False and by_id["p2"]["status"] == "fail"
    assert by_id["p3"]["status"] == "invalid" and "test" in by_id["p3"]["error"]
    assert "duplicate id" in by_id["line-5"]["error"] and "not JSON" in by_id["line-3"]["error"]
    assert set(by_id["p10"]) == {"id", "passed", "status", "tests_run", "duration_s", "key"}


def test_cli_resumes_without_rerunning_finished_pairs(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [{"id": "a", "solution": GOOD, "test": TEST}, {"id": "b", "solution": GOOD, "test": TEST + "#b"}])
    # a previous, interrupted run: one verdict (deliberately marked so we can see it is kept) and a torn line
    key = content_key(GOOD, TEST, "fast", 1.0, "cpu")
    out.write_text(json.dumps({"id": "a", "passed": False, "status": "fail", "tests_run": 1, "duration_s": 9.0, "key": key})
                   + "\n" + '{"id": "b", "pas')
    proc = run_cli("--input", src, "--output", out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in read(out)}
    assert rows["a"]["duration_s"] == 9.0  # not run again
    assert rows["b"]["status"] == "pass"


def test_cli_reuses_a_verdict_only_for_the_same_code_and_settings(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [{"id": "a", "solution": GOOD, "test": TEST}])
    # a stale `fail` for the same id from an earlier run on other code, and one with no key at all
    stale = {"id": "a", "passed": False, "status": "fail", "tests_run": 1, "duration_s": 9.0,
             "key": content_key("def add(a, b):\n    return 0\n", TEST, "fast", 1.0, "cpu")}
    write_jsonl(out, [stale, {"id": "gone", "passed": True, "status": "pass", "tests_run": 1, "duration_s": 0.1}])
    proc = run_cli("--input", src, "--output", out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert "re-running 1 pairs" in proc.stderr and "dropping 1 output records" in proc.stderr and "gone" in proc.stderr
    rows = {r["id"]: r for r in read(out)}
    assert set(rows) == {"a"} and rows["a"]["status"] == "pass"
    # another timeout is other settings: run again
    proc = run_cli("--input", src, "--output", out, "--workers", "1", "--timeout", "2")
    assert "re-running 1 pairs" in proc.stderr
    # --keep-extra keeps what is not in the input
    write_jsonl(out, [*read(out), {"id": "z", "passed": True, "status": "pass", "tests_run": 1, "duration_s": 0.1}])
    proc = run_cli("--input", src, "--output", out, "--workers", "1", "--timeout", "2", "--keep-extra")
    assert proc.returncode == 0 and "keeping 1 output records" in proc.stderr
    assert {r["id"] for r in read(out)} == {"a", "z"}


def test_cli_refuses_to_write_over_its_input(tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"id": "a", "solution": GOOD, "test": TEST}])
    original = src.read_text()
    proc = run_cli("--input", src, "--output", tmp_path / "." / "in.jsonl")
    assert proc.returncode == 2 and "--output is the input file" in proc.stderr
    assert src.read_text() == original


def test_cli_missing_input_and_bad_timeout(tmp_path):
    proc = run_cli("--input", tmp_path / "nope.jsonl", "--output", tmp_path / "o.jsonl")
    assert proc.returncode == 2 and "input file not found" in proc.stderr
    (tmp_path / "i.jsonl").write_text("")
    proc = run_cli("--input", tmp_path / "i.jsonl", "--output", tmp_path / "o.jsonl", "--timeout", "0")
    assert proc.returncode == 2 and "positive" in proc.stderr
