"""Plugin output parsing, against the examples of the Monitoring Plugins guidelines."""

from __future__ import annotations

from collector.metrics.nagios import CRITICAL, OK, UNKNOWN, WARNING, parse_output, parse_perfdata


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


# -- the Performance data section of the Monitoring Plugins Development Guidelines, rule by rule


def test_guidelines_label_with_space_percent_and_all_five_fields() -> None:
    assert parse_perfdata("'label with space'=10%;80;90;0;100") == {
        "label with space": {"value": 10.0, "uom": "%", "warn": "80", "crit": "90",
                             "min": 0.0, "max": 100.0}}


def test_guidelines_two_single_quotes_make_one_quote() -> None:
    perf = parse_perfdata("'''quoted'''=1 'it''s'=2 'a '' b'=3")
    assert perf == {"'quoted'": {"value": 1.0, "uom": ""}, "it's": {"value": 2.0, "uom": ""},
                    "a ' b": {"value": 3.0, "uom": ""}}
    # A bare label cannot hold a quote: the item is dropped, its neighbours are kept.
    assert parse_perfdata("a=1 ''quoted''=2 b=3") == {"a": {"value": 1.0, "uom": ""},
                                                      "b": {"value": 3.0, "uom": ""}}


def test_guidelines_units_of_measurement() -> None:
    text = ("n=5 t=1.5s tm=250ms tu=40us p=99% b=1B kb=2KB mb=3MB tb=4TB c=12345c "
            "gb=5GB mib=6MiB temp=45°C rate=7B/s")
    perf = parse_perfdata(text)
    assert {label: item["uom"] for label, item in perf.items()} == {
        "n": "", "t": "s", "tm": "ms", "tu": "us", "p": "%", "b": "B", "kb": "KB", "mb": "MB",
        "tb": "TB", "c": "c", "gb": "GB", "mib": "MiB", "temp": "°C", "rate": "B/s"}
    assert perf["tm"]["value"] == 250.0 and perf["c"]["value"] == 12345.0


def test_guidelines_undetermined_value_is_u_alone() -> None:
    perf = parse_perfdata("a=U b=U;5;10;0;100 c=Unknown d=u")
    assert perf == {"a": {"value": None, "uom": ""},
                    "b": {"value": None, "uom": "", "warn": "5", "crit": "10", "min": 0.0,
                          "max": 100.0}}


def test_guidelines_empty_fields_and_dropped_trailing_semicolons() -> None:
    perf = parse_perfdata("a=1;;;; b=2;;10 c=3;5 d=4;;;0; e=5;;;;100 f=6;")
    assert perf == {"a": {"value": 1.0, "uom": ""},
                    "b": {"value": 2.0, "uom": "", "crit": "10"},
                    "c": {"value": 3.0, "uom": "", "warn": "5"},
                    "d": {"value": 4.0, "uom": "", "min": 0.0},
                    "e": {"value": 5.0, "uom": "", "max": 100.0},
                    "f": {"value": 6.0, "uom": ""}}


def test_real_check_load_output_with_trailing_semicolons() -> None:
    text = ("LOAD OK - total load average: 1.33, 0.59, 0.26|load1=1.330;5.000;10.000;0; "
            "load5=0.590;4.000;8.000;0; load15=0.260;3.000;6.000;0; \n")
    result = parse_output(0, text)
    assert result["output"] == "LOAD OK - total load average: 1.33, 0.59, 0.26"
    assert result["perf"]["load1"] == {"value": 1.33, "uom": "", "warn": "5.000",
                                       "crit": "10.000", "min": 0.0}
    assert set(result["perf"]) == {"load1", "load5", "load15"}


def test_decimal_comma_of_a_localised_plugin_is_read() -> None:
    assert parse_perfdata("load1=0,52;1,5;2;0;10,5") == {
        "load1": {"value": 0.52, "uom": "", "warn": "1,5", "crit": "2", "min": 0.0,
                  "max": 10.5}}


def test_min_max_that_are_not_numbers_are_left_out() -> None:
    assert parse_perfdata("a=1;;;1_0;nan b=2;;;inf;x") == {"a": {"value": 1.0, "uom": ""},
                                                           "b": {"value": 2.0, "uom": ""}}


def test_perfdata_only_in_long_output_and_crlf_lines() -> None:
    text = "OK - all fine\r\nfirst detail\r\nsecond detail | a=1\r\nb=2s\r\n'c d'=3%\r\n"
    result = parse_output(0, text)
    assert result["output"] == "OK - all fine"
    assert result["long_output"] == "first detail\nsecond detail"
    assert result["perf"] == {"a": {"value": 1.0, "uom": ""}, "b": {"value": 2.0, "uom": "s"},
                              "c d": {"value": 3.0, "uom": "%"}}


def test_long_output_without_perfdata_and_empty_perfdata() -> None:
    result = parse_output(2, "CRITICAL - down |\nline 1\nline 2\n")
    assert (result["state"], result["output"], result["perf"]) == (CRITICAL, "CRITICAL - down",
                                                                   {})
    assert result["long_output"] == "line 1\nline 2"


def test_unterminated_quote_does_not_hide_later_items() -> None:
    assert parse_perfdata("'abc=1 d=2 'e f'=3") == {"d": {"value": 2.0, "uom": ""},
                                                    "e f": {"value": 3.0, "uom": ""}}
