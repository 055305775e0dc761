"""`python -m cityops_cli ...`: the `cityops` command (the demo starts its children this way)."""

import sys

from cityops_cli.main import main

sys.exit(main())
