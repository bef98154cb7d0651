"""`python -m nnviz` runs the command line (and, with no arguments, the app)."""

import sys

from nnviz.cli import main

sys.exit(main())
