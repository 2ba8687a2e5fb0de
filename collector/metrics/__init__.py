"""Metric families: the schema gate, derived rates, chart series, checks."""
