"""SSRF edge prefixes (issue #26 item 9): refused by our own table, not by whatever the running
Python's ``is_global`` happens to know."""

from __future__ import annotations

import ipaddress

import pytest

from imagematch.addresses import AddressPolicy, is_public_address
from imagematch.errors import PermanentError
from tests.reliability.conftest import Outcomes

REFUSED = {
    "site-local fec0::/10 (fec0::1)": "fec0::1",
    "site-local fec0::/10 (feff::1)": "feff::1",
    "local-use NAT64 64:ff9b:1::/48 wrapping 8.8.8.8": "64:ff9b:1::808:808",
    "IPv4-translated ::ffff:0:a.b.c.d wrapping 127.0.0.1": "::ffff:0:7f00:1",
    "IPv4-translated ::ffff:0:a.b.c.d wrapping 10.0.0.1": "::ffff:0:a00:1",
    "IPv4-translated ::ffff:0:a.b.c.d wrapping 169.254.169.254": "::ffff:0:a9fe:a9fe",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_edge_prefixes_are_refused(case: str, outcomes: Outcomes) -> None:
    with pytest.raises(PermanentError, match="private address") as refused:
        AddressPolicy().choose("img.example", 443, [REFUSED[case]])
    outcomes.record("security", f"SSRF: {case}", f"refused: {refused.value}")


def test_the_refusal_does_not_depend_on_is_global(monkeypatch: pytest.MonkeyPatch) -> None:
    # An interpreter whose tables call every address global must still refuse these.
    monkeypatch.setattr(ipaddress.IPv6Address, "is_global", property(lambda self: True))
    monkeypatch.setattr(ipaddress.IPv4Address, "is_global", property(lambda self: True))
    for address in [*REFUSED.values(), "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "10.0.0.1"]:
        assert not is_public_address(ipaddress.ip_address(address)), address


def test_an_ipv4_translated_public_address_is_judged_by_its_ipv4() -> None:
    assert is_public_address(ipaddress.ip_address("::ffff:0:808:808"))  # 8.8.8.8
    assert is_public_address(ipaddress.ip_address("2001:4860:4860::8888"))
