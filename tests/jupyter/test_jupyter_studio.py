"""Studio inside Jupyter: `{base_url}coflux/` behind Jupyter's login, its files under `static/`."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
import tornado.httpclient

from coflux_server.studio_handlers import STATIC_DIR, built


async def _anonymous(http_server_client, path: str) -> tornado.httpclient.HTTPResponse:
    return await http_server_client.fetch(path, follow_redirects=False, raise_error=False)


async def test_studio_page_redirects_anonymous_visitor_to_login(coflux_ext, jp_base_url, http_server_client):
    for path in ("coflux/", "coflux/static/studio.js"):
        r = await _anonymous(http_server_client, jp_base_url + path)
        assert r.code == 302, (path, r.code)
        location = urllib.parse.urlsplit(r.headers["Location"])
        assert location.path == jp_base_url + "login"
        assert urllib.parse.parse_qs(location.query)["next"] == [jp_base_url + path]
        assert b"coflux-config" not in r.body


async def test_studio_page_served_with_auth(coflux_ext, jp_fetch, jp_base_url):
    r = await jp_fetch("coflux/")
    assert r.code == 200
    page = r.body.decode()
    config = json.loads(re.search(r'<script id="coflux-config" type="application/json">(.*?)</script>', page)[1])
    assert config == {"base": jp_base_url + "coflux/", "mode": "jupyter"}
    assert '<div id="coflux-studio">' in page
    if built():
        assert '<script type="module" src="static/studio.js"></script>' in page
        assert '<link rel="stylesheet" href="static/studio.css">' in page
    else:
        assert "npm --prefix jupyter_ext/frontend ci" in page  # says how to build it


async def test_studio_static_files_and_path_tricks(coflux_ext, jp_fetch, http_server_client, jp_base_url):
    probe = STATIC_DIR / "test-probe.txt"
    probe.write_text("probe")
    try:
        r = await jp_fetch("coflux", "static", "test-probe.txt")
        assert r.body == b"probe"
    finally:
        probe.unlink()
    for trick in ("static/..%2fstudio_handlers.py", "static/%2e%2e/studio_handlers.py", "static/.gitignore"):
        with pytest.raises(tornado.httpclient.HTTPClientError) as err:
            await jp_fetch("coflux", trick)
        assert err.value.code in (403, 404), trick


async def test_studio_without_slash_redirects(coflux_ext, jp_fetch, jp_base_url):
    r = await jp_fetch("coflux", follow_redirects=False, raise_error=False)
    assert r.code in (301, 302) and r.headers["Location"].endswith(jp_base_url + "coflux/")


async def test_queue_route_behind_jupyter_auth(coflux_ext, jp_fetch, http_server_client, jp_base_url):
    r = await jp_fetch("coflux", "api", "queue")
    assert json.loads(r.body) == {"queue": [], "total": 0}
    anonymous = await _anonymous(http_server_client, jp_base_url + "coflux/api/queue")
    assert anonymous.code == 403 and b"queue" not in anonymous.body
