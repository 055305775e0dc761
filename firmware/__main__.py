"""`python -m firmware --config FILE [--check]`: the agent on a Pi, without the platform."""

import sys

from firmware.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
