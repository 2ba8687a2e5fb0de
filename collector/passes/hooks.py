"""What runs after the samples of a pass are stored, in this order.

Each entry is ``module:function`` with the signature
``on_pass(config, store, samples: dict[str, dict], now: datetime, deadline: float) -> None``
where ``samples`` maps host name to the sample just stored (failed hosts included) and
``deadline`` is a ``time.monotonic()`` value the hook must finish by.  A hook that raises is
logged and the pass goes on: a broken chart rollup must never stop alerting, and neither may
stop the samples from being stored (they already are).
"""

POST_PASS_HOOKS: tuple[str, ...] = (
    "collector.store.rollup:on_pass",
    "collector.alerts.hook:on_pass",
)
