"""`python -m utscale ...`: the command line (utscale.cli)."""

from utscale.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
