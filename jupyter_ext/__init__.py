"""Jupyter Server extension: the coflux server under `{base_url}coflux/`, behind Jupyter's auth.

Enabled on install by `jupyter-config/jupyter_server_config.d/jupyter_ext.json`; configure with
`c.CofluxExtension.db_url`, `.data_dir`, `.token`.
"""

from __future__ import annotations

from typing import Any

from .extension import CofluxExtension

__all__ = ["CofluxExtension"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "jupyter_ext", "app": CofluxExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # The prebuilt Lab extension (built from frontend/lab/); `jupyter labextension develop .` links it.
    return [{"src": "labextension", "dest": "coflux-studio"}]
