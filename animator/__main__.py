"""`python -m animator` runs the command line."""

import sys

from animator.cli import main

sys.exit(main())
