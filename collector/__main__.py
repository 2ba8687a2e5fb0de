"""``python -m collector`` is the same as ``osmon``."""

import sys

from collector.cli import main

sys.exit(main())
