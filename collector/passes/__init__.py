"""The collection pass: every enabled host once, in parallel, bounded in time, then the
post-pass hooks."""
