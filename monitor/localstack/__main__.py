"""`python -m monitor.localstack fetch|up|down|status` (what the Makefile runs); same code as `slamon stack`."""

import sys

from .cli import main

sys.exit(main())
