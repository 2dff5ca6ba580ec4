"""`python -m costsim.cli`: the same entry point as the `costsim` script."""

import sys

from costsim.cli.app import main

sys.exit(main())
