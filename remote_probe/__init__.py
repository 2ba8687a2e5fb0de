"""The osmon remote probe.

`probe.py` beside this file is sent as source text to each monitored server (piped into
`python3 -`); it imports nothing of ours and must stay stdlib-only and Python 3.6 compatible.
This package file exists only so that tests and the collector can import `remote_probe.probe`.
"""
