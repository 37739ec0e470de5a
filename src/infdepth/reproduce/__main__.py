"""``python -m infdepth.reproduce``."""

import sys

from .command import main

sys.exit(main())
