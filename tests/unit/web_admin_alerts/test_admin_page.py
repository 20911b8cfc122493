"""``GET /admin``: the admin page and its assets, served without a token and ready for a strict CSP."""

from __future__ import annotations

import re

import pytest

ASSETS = [
    ("/admin", "text/html; charset=utf-8"),
    ("/admin/app.js", "text/javascript; charset=utf-8"),
    ("/admin/app.css", "text/css; charset=utf-8"),
    ("/admin/favicon.svg", "image/svg+xml"),
]


@pytest.mark.parametrize(("path", "content_type"), ASSETS)
async def test_the_page_and_its_assets_are_served_without_a_token(client, path, content_type):
    response = await client.get(path)

    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    assert len(await response.read()) > 100


async def test_the_page_allows_only_its_own_script_and_style(client):
    response = await client.get("/admin")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_the_page_has_no_inline_script_or_style(client):
    html = await (await client.get("/admin")).text()

    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script src="/admin/app.js" defer>']
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert '<link rel="stylesheet" href="/admin/app.css">' in html


async def test_the_script_reads_the_stream_with_a_bearer_token_and_never_from_the_query_string(client):
    script = await (await client.get("/admin/app.js")).text()

    assert "/api/v1/admin/alerts/stream" in script
    assert "Authorization: `Bearer ${token}`" in script
    assert "Last-Event-ID" in script
    assert "sessionStorage" in script
    assert "innerHTML" not in script
    assert "location.search" not in script.replace("window.location.pathname + window.location.search", "")
