"""`python -m tui.sim`: the same as `wan-tui sim`."""

import sys

from tui.sim.server import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:], prog="python -m tui.sim"))
