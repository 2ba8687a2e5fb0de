"""hosts.toml, parsed once into frozen dataclasses."""

from collector.config.parser import *  # noqa: F403
from collector.config.parser import _Parser  # noqa: F401
