"""`python -m firmware agent ...`: the agent's commands on a Pi (the same as `cityops agent ...`)."""

import sys

from cityops.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
