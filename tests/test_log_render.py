"""How a log line's template and values read (the CLI, the client and outside-execution logging)."""

from coflux.logs import render


def test_placeholders_filled_and_extra_values_follow():
    assert render("fetched {count} rows from {url}", {"count": 3, "url": "x", "page": 2}) == \
        "fetched 3 rows from x page=2"


def test_a_stray_brace_or_unknown_placeholder_keeps_the_rest_rendered():
    # str.format would fail on the stray brace and show the raw template; each placeholder stands alone.
    assert render("{done} of {total} {", {"done": 1}) == "1 of {total} {"
    assert render("{{literal}} {n}", {"n": 5}) == "{literal} 5"
    assert render("{0} {n!r}", {"n": 5}) == "{0} {n!r} n=5"


def test_values_without_template():
    assert render(None, {"a": 1, "b": "two"}) == "a=1 b='two'"
    assert render("", {}) == ""
