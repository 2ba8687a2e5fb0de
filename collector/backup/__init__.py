"""Backups and verified restores of the data directory."""
