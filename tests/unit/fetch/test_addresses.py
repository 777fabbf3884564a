"""The address classifier the fetcher judges redirects with: one row per kind of range."""

from __future__ import annotations

import pytest

from bot.fetch.addresses import literal_address, reach


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", "public"),
        ("151.101.1.69", "public"),
        ("2001:4860:4860::8888", "public"),
        ("64:ff9b::808:808", "public"),  # NAT64 of 8.8.8.8
        ("127.0.0.1", "private"),  # loopback
        ("127.8.9.10", "private"),
        ("::1", "private"),
        ("10.1.2.3", "private"),  # RFC 1918
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),  # ULA
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "private"),  # link-local
        ("fe80::1", "private"),
        ("fe80::1%eth0", "private"),
        ("100.64.0.1", "private"),  # CGNAT
        ("100.127.255.254", "private"),
        ("0.0.0.0", "private"),  # unspecified
        ("::", "private"),
        ("224.0.0.1", "private"),  # multicast
        ("239.255.255.250", "private"),
        ("ff02::1", "private"),
        ("ff0e::1", "private"),
        ("255.255.255.255", "private"),  # broadcast
        ("192.0.2.1", "private"),  # documentation
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::ffff:8.8.8.8", "public"),
        ("64:ff9b::7f00:1", "private"),  # NAT64 of 127.0.0.1
        ("2002:c0a8:0101::1", "private"),  # 6to4 of 192.168.1.1
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("fd20:ce::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("2002:a9fe:a9fe::1", "metadata"),
    ],
)
def test_reach(address: str, expected: str) -> None:
    assert reach(address) == expected


def test_reach_refuses_what_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        reach("example.org")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe"),
        ("2852039166", "169.254.169.254"),  # resolvers read a bare number as IPv4
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("example.org", None),
        ("cafe.de", None),
        ("localhost", None),
        ("", None),
    ],
)
def test_literal_address(host: str, expected: str | None) -> None:
    assert literal_address(host) == expected
