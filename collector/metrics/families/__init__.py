"""One small module per metric family, each defining ``FAMILY`` (a :class:`Family`).

The probe's reader of the family lives in ``remote_probe/probe.py`` (one file, by design);
everything the central side does with the family is declared here.  The registry
(:mod:`collector.metrics.registry`) lists them in order.
"""
