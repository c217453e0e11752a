"""`python -m sandbox`: the same as the `whatsapp-sandbox` command (`sandbox/cli.py`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
