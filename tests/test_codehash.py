"""The code hash behind `cf.Cache(version=cf.CODE)` (coflux/codehash.py), on functions loaded
from real files: what counts as a change (the task or a project helper it calls) and what does
not (whitespace, comments, docstrings, decorator options, the module's name or folder, library
functions)."""

from __future__ import annotations

import importlib.util
import itertools
import textwrap
from pathlib import Path

import coflux as cf
from coflux import codehash

_names = itertools.count()

BASE = '''
import json
import coflux as cf


def helper(x):
    return x + 1


@cf.task(cache=cf.Cache(version=cf.CODE))
def task(x):
    return json.dumps(helper(x) * 2)
'''


def load(folder: Path, source: str):
    """Import `source` as a fresh module from a file in `folder`; its `task`."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"codehash_case_{next(_names)}"
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.task


def test_whitespace_comments_docstrings_and_decorator_options_do_not_count(tmp_path: Path) -> None:
    base = load(tmp_path / "a", BASE).code_hash()
    cosmetic = load(tmp_path / "b", '''
import json
import coflux as cf

def helper(x):
    # one more
    return x+1

@cf.task(cache=cf.Cache(version=cf.CODE, max_age=60), retries=2)
def task(x):
    """Documented now."""
    return json.dumps( helper(x)*2 )   # same
''').code_hash()
    assert base is not None and len(base) == 64
    assert cosmetic == base


def test_an_edit_of_the_task_or_of_a_helper_it_calls_counts(tmp_path: Path) -> None:
    base = load(tmp_path / "a", BASE).code_hash()
    assert load(tmp_path / "b", BASE.replace("* 2", "* 3")).code_hash() != base
    assert load(tmp_path / "c", BASE.replace("x + 1", "x + 2")).code_hash() != base
    # A helper the task does not call is not part of its code.
    assert load(tmp_path / "d", BASE + "\n\ndef unused():\n    return 1\n").code_hash() == base


def test_redefining_a_helper_in_place_changes_the_hash_of_an_unchanged_task(tmp_path: Path) -> None:
    """As re-running a helper's cell does: the task's function object is the same."""
    task = load(tmp_path / "a", BASE)
    before = task.code_hash()
    other_cell = load(tmp_path / "b", BASE.replace("x + 1", "x - 1"))
    task.fn.__globals__["helper"] = other_cell.fn.__globals__["helper"]
    assert task.code_hash() != before


def test_the_same_code_in_another_module_or_folder_has_the_same_hash(tmp_path: Path) -> None:
    assert load(tmp_path / "one", BASE).code_hash() == load(tmp_path / "two" / "deeper", BASE).code_hash()


def test_library_functions_are_not_followed() -> None:
    assert not codehash._is_project_file(textwrap.__file__)
    assert not codehash._is_project_file(cf.__file__)
    assert codehash._is_project_file("<ipython-input-3-abc>")


def test_cf_code_is_a_version_string_on_the_wire() -> None:
    assert repr(cf.CODE) == "cf.CODE" and cf.CODE == "@code"

    @cf.task(cache=cf.Cache(version=cf.CODE))
    def cached(x):
        return x

    assert cached.options["cache"]["version"] == "@code"
    assert cf.Cache(version="v2").version == "v2"  # a version of one's own still works


def test_no_source_means_no_hash() -> None:
    exec_namespace: dict = {}
    exec("def f(x):\n    return x\n", exec_namespace)  # <string>: no source to read
    assert codehash.code_hash(exec_namespace["f"]) is None
