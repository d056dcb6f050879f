"""Jupyter Server extension: the coflux server under `{base_url}coflux/`, behind Jupyter's auth.

Installed as the package `coflux_jupyter` (the repository's folder jupyter_ext/, renamed by the
wheel so that it collides with no other module: pyproject.toml), and enabled on install by
`jupyter-config/jupyter_server_config.d/coflux_jupyter.json`; configure with
`c.CofluxExtension.db_url`, `.data_dir`, `.token`.

Layer: above the server (its routes and state), which it mounts inside Jupyter Server.
"""

from __future__ import annotations

from typing import Any

from .extension import CofluxExtension

__all__ = ["CofluxExtension"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "coflux_jupyter", "app": CofluxExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # The prebuilt Lab extension (built from frontend/lab/); `jupyter labextension develop .` links it.
    return [{"src": "labextension", "dest": "coflux-studio"}]
