"""Backups and restore of the data directory, and the atomic swap they rely on."""
