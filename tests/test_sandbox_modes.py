"""The sandbox as a package a reader can lift out: one table of modes, typed settings across the
process boundary, a tamper check that follows functions to whichever module holds them, and imports
that stay inside the standard library where untrusted code runs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from utscale.sandbox import SandboxSettings, child
from utscale.sandbox.modes import MODE_RULES, MODES, read_worker_settings

SANDBOX = Path(child.__file__).parent
# the modules a worker and its children load: untrusted code shares their address space
WORKER_SIDE = ("child", "codec", "isolated", "judge", "modes", "reference_modes", "statuses", "worker")


def test_every_mode_has_one_row_of_rules():
    assert tuple(MODE_RULES) == MODES
    assert {r.child for r in MODE_RULES.values()} == {"fast", "judge", "codet", "coderm", "srank"}
    assert all(r.guarantee for r in MODE_RULES.values())


def test_worker_settings_cross_typed_and_are_checked_on_arrival():
    settings = SandboxSettings(mode="coderm").worker_settings(0, "/tmp/x", 61000)
    assert read_worker_settings(json.dumps(settings)) == settings
    assert settings["grace"] == 1.0  # the paper's executor fixes its own kill delay
    missing = {k: v for k, v in settings.items() if k != "uid"}
    with pytest.raises(ValueError, match="missing \\['uid'\\]"):
        read_worker_settings(json.dumps(missing))
    with pytest.raises(ValueError, match="unexpected \\['extra'\\]"):
        read_worker_settings(json.dumps({**settings, "extra": 1}))
    with pytest.raises(ValueError, match="timeout must be a number"):
        read_worker_settings(json.dumps({**settings, "timeout": "1"}))
    with pytest.raises(ValueError, match="mode must be one of"):
        read_worker_settings(json.dumps({**settings, "mode": "turbo"}))


def test_the_tamper_check_covers_the_module_a_function_lives_in_whichever_it_is():
    """A function of a module the check was never told about: rebinding a name it looks up there is
    found, as is rebinding a function of a module passed as one of the sandbox's."""
    elsewhere = types.ModuleType("elsewhere")
    exec("def helper():\n    return len([])\n\ndef runner():\n    return helper()\n", vars(elsewhere))
    snapshot = child.snapshot_over((elsewhere.runner,), ())
    pristine = snapshot()
    assert not child._tampered(pristine, snapshot)
    original = elsewhere.helper
    elsewhere.helper = lambda: 0
    assert child._tampered(pristine, snapshot)
    elsewhere.helper = original
    assert not child._tampered(pristine, snapshot)
    other = types.ModuleType("other")
    exec("def unused():\n    return 1\n", vars(other))
    snapshot = child.snapshot_over((elsewhere.runner,), (other,))
    pristine = snapshot()
    other.unused = lambda: 2
    assert child._tampered(pristine, snapshot)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" if node.module == "utscale.sandbox" else node.module
                      for a in node.names}
    return found


def test_what_untrusted_code_shares_a_process_with_imports_only_the_standard_library():
    allowed = {f"utscale.sandbox.{name}" for name in WORKER_SIDE}
    for name in WORKER_SIDE:
        for module in _imports(SANDBOX / f"{name}.py"):
            top = module.split(".")[0]
            assert module in allowed or (top != "utscale" and top in sys.stdlib_module_names), (name, module)


def test_the_sandbox_package_imports_without_the_analysis_stack():
    code = ("import sys, utscale.sandbox, utscale.sandbox.cli, utscale.sandbox.executor, utscale.sandbox.pairs, "
            "utscale.sandbox.oracle\n"
            "from utscale.sandbox import Executor, run_pairs, STATUSES, MODES\n"
            "print(sorted(m for m in ('pandas', 'numpy', 'matplotlib', 'scipy', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
