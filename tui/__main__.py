"""`python -m tui`: the same as the `wan-tui` command."""

import sys

from tui.cli import main

sys.exit(main())
