"""Editable installs of coflux: the checkout's server/ and jupyter_ext/ under their installed names.

The wheel installs the folders server/ and jupyter_ext/ as the packages `coflux_server` and
`coflux_jupyter` (pyproject.toml, `[tool.hatch.build.targets.wheel] sources`), so that a user's
`server.py` or any other package named `server` or `jupyter_ext` can neither shadow ours nor be
shadowed by them. Hatchling builds editable wheels of such a project only in its "explicit" mode
(`dev-mode-dirs`: directories put on sys.path): its other mode refuses a `sources` entry that
renames a folder rather than strips a prefix from it (https://github.com/pfmoore/editables/issues/20).
Explicit mode puts the checkout on sys.path, which serves `coflux`; for the renamed folders this
hook adds to the editable wheel (`force_include_editable`, build data meant for hooks of editable
builds) a module that installs an import finder mapping each installed name to its folder, and
a `.pth` file that imports it at start-up: how the editables library and setuptools' editable
installs map packages whose names differ from their folders. Standard wheels are untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "_coflux_editable_names"

FINDER = '''"""coflux, installed in editable mode: packages the wheel installs under names other than
their folders' in the checkout are imported from those folders (written by hatch_build.py)."""

import importlib.util
import os
import sys

FOLDERS = {folders!r}


class InstalledNames:
    """A meta path finder: each installed name -> its folder in the checkout."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        folder = FOLDERS.get(name) if path is None else None
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                      submodule_search_locations=[folder])


if InstalledNames not in sys.meta_path:
    sys.meta_path.append(InstalledNames)
'''


class EditableNamesHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "editable":
            return
        folders = {target.strip("/" + os.sep): os.path.join(self.root, source.strip("/" + os.sep))
                   for source, target in self.build_config.sources.items()
                   if source and target and source != target}
        if not folders:
            return
        self._directory = tempfile.mkdtemp(prefix="coflux-editable-")
        module = os.path.join(self._directory, f"{MODULE}.py")
        with open(module, "w") as file:
            file.write(FINDER.format(folders=dict(sorted(folders.items()))))
        pth = os.path.join(self._directory, f"{MODULE}.pth")
        with open(pth, "w") as file:
            file.write(f"import {MODULE}\n")
        build_data["force_include_editable"][module] = f"{MODULE}.py"
        build_data["force_include_editable"][pth] = f"{MODULE}.pth"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        directory = getattr(self, "_directory", None)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
