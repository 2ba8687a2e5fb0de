"""hosts.toml, parsed once into frozen dataclasses (:mod:`.model`) by :mod:`.parser`.

A typo is caught here, before any host is contacted, and reported with the file, the table
(or host) and the key; all problems of a file are reported together.
"""

import argparse
import dataclasses
from typing import Any

from collector.config.model import (
    OFF,
    AlertSettings,
    BackupSettings,
    CertFrSettings,
    Check,
    Config,
    Host,
    Jump,
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
from collector.config.shard import Shard, parse_shard, shard_of
from collector.names import SAFE_NAME


def load_config(args: Any) -> Config:
    """Every command loads the config the same way: ``--config``, else ``$OSMON_CONFIG``, else
    ``./hosts.toml``; a command's ``--shard K/N`` wins over ``[settings] shard``."""
    config = load(getattr(args, "config", None))
    shard = getattr(args, "shard", None)
    if shard is not None:
        config = dataclasses.replace(
            config, settings=dataclasses.replace(config.settings, shard=shard))
    return config


def add_shard_option(parser: argparse.ArgumentParser) -> None:
    """``--shard K/N`` for the commands that act as one collector of several."""
    parser.add_argument("--shard", type=_shard_argument, metavar="K/N",
                        help="be shard K of N: only the hosts that hashing of their names "
                             "assigns to K (default: [settings] shard, else every host)")


def _shard_argument(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


__all__ = [
    "OFF", "AlertSettings", "BackupSettings", "CertFrSettings", "Check", "Config", "Host",
    "Jump", "Level", "Settings", "Shard", "SmtpSettings", "Thresholds", "WebhookSettings",
    "WebSettings",
    "default_config_path", "MAX_CHECK_OUTPUT", "MAX_PORT", "SAFE_INTERPRETER", "SAFE_NAME",
    "add_shard_option", "load", "load_config", "parse", "parse_shard", "shard_of",
]
