"""How a host's raw sample is obtained: over SSH (the probe), or in-process for the central host."""
