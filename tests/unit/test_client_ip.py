"""Which address counts as the client's: X-Forwarded-For only from a trusted proxy."""

from __future__ import annotations

import ipaddress
from unittest.mock import Mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from payments.web.client_ip import TRUSTED_PROXIES_KEY, client_ip, parse_ip

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def request_from(peer: str, forwarded: str | None = None, *, proxies=PROXIES) -> web.Request:
    app = web.Application()
    app[TRUSTED_PROXIES_KEY] = proxies
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 5555)
    return make_mocked_request("GET", "/", headers=headers, app=app, transport=transport)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # An untrusted peer's header is a claim anyone can make.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        # The right-most untrusted hop: addresses to its left are the client's own claims.
        ("10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9", "198.51.100.1"),
        ("10.1.2.3", "198.51.100.1, garbage", "10.1.2.3"),
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", "10.4.4.4", "10.1.2.3"),
        ("::ffff:10.1.2.3", "2001:db8::1", "2001:db8::1"),
        ("::1", "198.51.100.9", "198.51.100.9"),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it(peer, forwarded, expected):
    assert client_ip(request_from(peer, forwarded)) == expected


def test_with_no_trusted_proxies_the_header_is_never_read():
    assert client_ip(request_from("10.1.2.3", "198.51.100.1", proxies=())) == "10.1.2.3"


def test_parse_ip_unwraps_mapped_addresses_and_refuses_the_rest():
    assert str(parse_ip("::ffff:192.0.2.1")) == "192.0.2.1"
    assert parse_ip("not an ip") is None
    assert parse_ip(None) is None
