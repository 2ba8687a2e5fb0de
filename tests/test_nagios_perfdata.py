"""Plugin output parsing, against the examples of the Monitoring Plugins guidelines."""

from __future__ import annotations

from collector.nagios import CRITICAL, OK, UNKNOWN, WARNING, parse_output, parse_perfdata


def test_guidelines_single_line_with_perfdata() -> None:
    result = parse_output(0, "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n")
    assert result["state"] == OK
    assert result["output"] == "DISK OK - free space: / 3326 MB (56%);"
    assert result["perf"] == {"/": {"value": 2643.0, "uom": "MB", "warn": "5948",
                                    "crit": "5958", "min": 0.0, "max": 5968.0}}


def test_guidelines_multi_line_with_perfdata_in_long_text() -> None:
    text = ("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
            "/ 15272 MB (77%);\n"
            "/boot 68 MB (69%);\n"
            "/home 69357 MB (27%);\n"
            "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
            "/home=69357MB;253404;253409;0;253414 \n"
            "/var/log=818MB;970;975;0;980\n")
    result = parse_output(1, text)
    assert result["state"] == WARNING
    assert result["long_output"].splitlines() == [
        "/ 15272 MB (77%);", "/boot 68 MB (69%);", "/home 69357 MB (27%);",
        "/var/log 819 MB (84%);"]
    assert set(result["perf"]) == {"/", "/boot", "/home", "/var/log"}
    assert result["perf"]["/var/log"]["value"] == 818.0
    assert result["perf"]["/home"]["max"] == 253414.0


def test_quoted_labels_with_spaces_and_escaped_quote() -> None:
    perf = parse_perfdata("'queue length'=12;10;20 'it''s'=1s 'a=b'=3")
    assert perf["queue length"] == {"value": 12.0, "uom": "", "warn": "10", "crit": "20"}
    assert perf["it's"] == {"value": 1.0, "uom": "s"}
    assert perf["a=b"]["value"] == 3.0


def test_units_ranges_missing_fields_and_undetermined() -> None:
    perf = parse_perfdata("time=0.5s;;;0 pct=99.5%;~:90;@95:100 c=42c u=U;1;2 neg=-3.5e2B;;;;")
    assert perf["time"] == {"value": 0.5, "uom": "s", "min": 0.0}
    assert perf["pct"] == {"value": 99.5, "uom": "%", "warn": "~:90", "crit": "@95:100"}
    assert perf["c"]["uom"] == "c"
    assert perf["u"]["value"] is None
    assert perf["neg"] == {"value": -350.0, "uom": "B"}


def test_garbage_items_are_skipped_not_fatal() -> None:
    perf = parse_perfdata("junk ok=1 =5 x=abc y=nan z=inf load1=0.5;5;10;0")
    assert set(perf) == {"ok", "load1"}


def test_exit_codes_outside_the_api_are_unknown_not_critical() -> None:
    assert parse_output(2, "CRITICAL - down")["state"] == CRITICAL
    assert parse_output(3, "UNKNOWN - no idea")["state"] == UNKNOWN
    crashed = parse_output(127, "sh: check_foo: not found")
    assert crashed["state"] == UNKNOWN
    assert crashed["output"].startswith("exit code 127")


def test_terminal_escapes_and_huge_output_are_neutralised() -> None:
    result = parse_output(0, "OK \x1b[31mred\x1b[0m " + "x" * 10000)
    assert "\x1b" not in result["output"]
    assert len(result["output"]) <= 1024
    many = " ".join(f"m{i}={i}" for i in range(500))
    assert len(parse_perfdata(many)) == 64
