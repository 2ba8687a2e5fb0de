"""hosts.toml, parsed once into frozen dataclasses (:mod:`.model`) by :mod:`.parser`.

A typo is caught here, before any host is contacted, and reported with the file, the table
(or host) and the key; all problems of a file are reported together.
"""

from typing import Any

from collector.config.model import (
    OFF,
    AlertSettings,
    BackupSettings,
    CertFrSettings,
    Check,
    Config,
    Host,
    Level,
    Settings,
    SmtpSettings,
    Thresholds,
    WebhookSettings,
    WebSettings,
    default_config_path,
)
from collector.config.parser import (
    MAX_CHECK_OUTPUT,
    MAX_PORT,
    SAFE_INTERPRETER,
    load,
    parse,
)
from collector.names import SAFE_NAME


def load_config(args: Any) -> Config:
    """Every command loads the config the same way: ``--config``, else ``$OSMON_CONFIG``, else
    ``./hosts.toml``."""
    return load(getattr(args, "config", None))


__all__ = [
    "OFF", "AlertSettings", "BackupSettings", "CertFrSettings", "Check", "Config", "Host",
    "Level", "Settings", "SmtpSettings", "Thresholds", "WebhookSettings", "WebSettings",
    "default_config_path",
    "MAX_CHECK_OUTPUT", "MAX_PORT", "SAFE_INTERPRETER", "SAFE_NAME", "load", "load_config", "parse",
]
