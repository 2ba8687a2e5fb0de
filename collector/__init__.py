"""osmon's central side: config, SSH transport, collection pass, storage, alerts, backups, CLI."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
