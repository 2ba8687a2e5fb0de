"""Names that become paths and URL segments: what a host or check may be called."""

from __future__ import annotations

import re

#: Host and check names become directory names and URL segments: keep them boring.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")  # \Z: "$" lets "web1\n" through
