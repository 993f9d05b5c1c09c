"""The resampling protocols of the accuracy curves: their names, and the seed stream each one draws from.

A leaf module, so that the run's parameter schema (`config`) and the curves (`scaling`) read one
vocabulary without importing each other."""

from __future__ import annotations

from typing import Literal, get_args

Protocol = Literal["subsample", "bootstrap", "coderm_code"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
# subsample (the default): per resample, n solutions and m tests drawn without replacement; a solution
#   draw is shared by every m (curves over m are paired) and a test draw by every n; m = 0 is exact.
# bootstrap (the paper's text): both drawn with replacement, paired the same way.
# coderm_code (the authors' code, for parity only): the first n solutions, m tests without replacement;
#   its random pick depends on n although its expectation does not.

# Each protocol's own stream of seeds, stated, not read off a tuple's order: reordering or adding names
# must not move a single committed curve. (The values are the positions the names had when the
# committed curves were drawn.)
SEED_STREAM: dict[Protocol, int] = {"subsample": 0, "bootstrap": 1, "coderm_code": 2}
