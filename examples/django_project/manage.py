#!/usr/bin/env python
"""Django's command line for the example: `python examples/django_project/manage.py runserver`."""

import os
import sys
from pathlib import Path

from dotenv import find_dotenv, load_dotenv


def main() -> None:
    # The project root, so that `examples.django_project` and `connectors` import from anywhere.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.settings")
    # WHATSAPP_* (and DJANGO_*) from a .env file, for what the environment does not set.
    load_dotenv(find_dotenv(usecwd=True))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
