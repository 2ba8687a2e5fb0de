"""The data directory: samples, rollups, retention, state files, the pass lock and log."""
