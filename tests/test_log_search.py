"""The log search finds a line exactly when its own text has every word, as SQLite's FTS5 finds
it: lines are indexed a batch to a document, and each line of a matching batch is then matched
on its own (server/store/search.py). Checked here against FTS5 itself, a document per line."""

from __future__ import annotations

import sqlite3

import pytest

from coflux_server.store import search

LINES = [
    ("loading {n} rows from {table}", {"n": {"v": 7}, "table": {"v": "users"}}),
    ("Zebra crossing ahead", None),
    ("foo-bar baz", None),
    ("bar foo", None),
    ("foo bar_baz", None),
    ("Café au lait: 3.5 €", None),
    ("naïve ÉCOLE résumé", None),
    ("epoch 12 loss=0.031", {"epoch": {"v": 12}, "loss": {"v": 0.031}}),
    ("nested", {"row": {"v": {"id": 5, "name": "Ada Lovelace"}, "refs": []}}),
    ("", {"only": {"v": "values here"}}),
    (None, None),
    ("日本語のテキスト 東京", None),
    ("Ωmega Δelta straße", None),
    ("tabs\tand\nnewlines", None),
    ("under_score and hyphen-ated", None),
    ("ends the line", None),
    ("line starts here", None),
    ('quoted "word" and back\\slash\\nend', None),
    ("control\x01char", {"flag": {"v": True}, "none": {"v": None}, "list": {"v": [1, "two", False]}}),
    ("a\\u00e9 literal", None),
]

QUERIES = ["zebra", "ZEBRA crossing", "foo-bar", "foo bar", "bar foo", "bar_baz", "cafe", "café", "CAFÉ lait",
           "3.5", "5", "naive ecole", "resume", "epoch 12", "loss", "0.031", "Ada", "lovelace id", "values",
           "only", "東京", "omega", "ωmega", "straße", "newlines", "hyphen", "ated", "under", "score",
           "line here", "the line starts", "rows users", "7", "n", "nothing", "a", "over_ride", "word", "slash",
           "nend", "back", "control", "char", "true", "null", "two", "false", "u00e9", "literal", "flag"]


@pytest.fixture(scope="module")
def per_line_index() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE per_line USING fts5(body, content='', tokenize='unicode61')")
    db.executemany("INSERT INTO per_line(rowid, body) VALUES (?, ?)",
                   [(i + 1, search.line_text(t, f)) for i, (t, f) in enumerate(LINES)])
    db.execute("CREATE VIRTUAL TABLE per_batch USING fts5(body, content='', tokenize='unicode61')")
    # Batches as the server indexes them: all lines in one, and each line in one of its own.
    batch = [["info", t, f, 1764612345.25] for t, f in LINES]
    db.executemany("INSERT INTO per_batch(rowid, body) VALUES (?, ?)",
                   [(1, search.document(batch))] + [(i + 2, search.document([line])) for i, line in enumerate(batch)])
    return db


@pytest.mark.parametrize("words", QUERIES)
def test_a_line_matches_exactly_when_fts5_finds_it_on_its_own(per_line_index: sqlite3.Connection,
                                                             words: str) -> None:
    phrase = search._fts_phrase(words)
    expected = {row for (row,) in per_line_index.execute("SELECT rowid FROM per_line WHERE per_line MATCH ?",
                                                         (phrase,))}
    terms = search.query_terms(words)
    got = {i + 1 for i, (t, f) in enumerate(LINES) if search.line_matches(terms, t, f)}
    assert got == expected, words
    # A batch's document is found whenever one of its lines is: the index never hides a line.
    batches = {row for (row,) in per_line_index.execute("SELECT rowid FROM per_batch WHERE per_batch MATCH ?",
                                                        (phrase,))}
    if expected:
        assert 1 in batches, words
    assert {row - 1 for row in batches if row > 1} >= expected, words


def test_levels_and_times_stay_out_of_a_batch_document(per_line_index: sqlite3.Connection) -> None:
    for word in ("info", "1764612345"):
        assert per_line_index.execute("SELECT rowid FROM per_batch WHERE per_batch MATCH ?", (word,)).fetchall() == []


def test_words_on_two_lines_of_one_batch_do_not_make_a_match() -> None:
    terms = search.query_terms("ends line starts")
    assert not any(search.line_matches(terms, t, f) for t, f in LINES)
