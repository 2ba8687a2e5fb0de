"""net: byte, packet, error and drop counters per interface; byte rates between passes.

The chart sums interfaces (``lo`` excluded: loopback traffic is not network load) into one
``rx`` and one ``tx`` line: per-interface lines would explode with container ``veth``
interfaces, which come and go.  If any interface has no rate (after a counter reset or on
the first pass) the sum is unknown for that sample: a missing point is honest, a dip would
not be.
"""

from __future__ import annotations

from collector.metrics.exports import counter_series, per_item
from collector.metrics.family import RATE, ChartSpec, Family, Sample, Values
from collector.metrics.schema import array, counter, record, string
from collector.metrics.values import counter_rates, items, num

COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors",
            "rx_drops", "tx_drops")


#: node_exporter's /proc/net/dev statistics (its default, "legacy" names) -> our counters.
NODE_NAMES = {"receive_bytes": "rx_bytes", "transmit_bytes": "tx_bytes",
              "receive_packets": "rx_packets", "transmit_packets": "tx_packets",
              "receive_errs": "rx_errors", "transmit_errs": "tx_errors",
              "receive_drop": "rx_drops", "transmit_drop": "tx_drops"}


def net_lines(sample: Sample) -> Values:
    out: Values = {}
    ifaces = [i for i in items(sample, "net") if i.get("iface") != "lo"]
    if not ifaces:
        return out
    for label, key in (("rx", "rx_bps"), ("tx", "tx_bps")):
        rates = [num(i.get(key)) for i in ifaces]
        # Unknown (or, defensively, negative) rate on any interface: the sum is unknown.
        if all(r is not None and r >= 0 for r in rates):
            out[label] = sum(rates)  # type: ignore[arg-type]
    return out


def rx_plus_tx(values: Values) -> float | None:
    if "rx" in values and "tx" in values:
        return values["rx"] + values["tx"]
    return None


FAMILY = Family(
    name="net",
    doc="counters per network interface; rx_bps and tx_bps in bytes per second between passes",
    section="net",
    schema=array(record({"iface": string(64)} | {
        key: counter(unit="bytes" if key.endswith("bytes") else "") for key in COUNTERS})),
    derive=counter_rates("iface", {"rx_bps": "rx_bytes", "tx_bps": "tx_bytes"}),
    stored=(("net[].rx_bps", "number >= 0 or null", "bytes/s"),
            ("net[].tx_bps", "number >= 0 or null", "bytes/s")),
    chart=ChartSpec("Network", RATE, net_lines, rx_plus_tx,
                    legend={"rx": "received", "tx": "sent"}),
    exported=tuple(
        counter_series(f"node_network_{stat}_total", f"Network device statistic {stat}.",
                per_item("net", {"device": "iface"}, key), ("device",))
        for stat, key in NODE_NAMES.items()),
)
