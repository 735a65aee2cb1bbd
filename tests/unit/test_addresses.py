"""The SSRF guard's address rules: which resolved addresses and ports a download may use."""

from __future__ import annotations

import pytest

from imagematch.addresses import AddressPolicy
from imagematch.config import Settings
from imagematch.errors import PermanentError

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1
    ],
)
def test_private_and_wrapped_private_addresses_are_refused(address: str) -> None:
    with pytest.raises(PermanentError, match="private address"):
        AddressPolicy().choose("img.example", 443, [address])


def test_one_private_answer_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(PermanentError, match="private address"):
        AddressPolicy().choose("img.example", 443, [PUBLIC, "127.0.0.1"])


def test_public_addresses_on_80_and_443_are_chosen_and_other_ports_need_listing() -> None:
    policy = AddressPolicy()
    assert str(policy.choose("img.example", 443, [PUBLIC, "1.1.1.1"])) == PUBLIC
    assert str(policy.choose("img.example", 80, ["2606:4700::1111"])) == "2606:4700::1111"
    with pytest.raises(PermanentError, match="port 8080"):
        policy.choose("img.example", 8080, [PUBLIC])
    assert str(AddressPolicy.parse("", [8080]).choose("img.example", 8080, [PUBLIC])) == PUBLIC


def test_the_allowance_names_hosts_or_networks_not_everything() -> None:
    policy = AddressPolicy.parse("localhost, 10.0.0.0/8,minio.internal")
    assert str(policy.choose("localhost", 9000, ["127.0.0.1"])) == "127.0.0.1"
    assert str(policy.choose("minio.internal", 9000, ["172.17.0.2"])) == "172.17.0.2"
    assert str(policy.choose("files.corp", 8080, ["10.2.3.4"])) == "10.2.3.4"
    with pytest.raises(PermanentError, match="private address"):
        policy.choose("evil.example", 80, ["127.0.0.1"])  # a name that merely resolves to loopback
    with pytest.raises(PermanentError, match="private address"):
        policy.choose("meta.example", 80, ["169.254.169.254"])
    with pytest.raises(ValueError, match="not a host name or network"):
        AddressPolicy.parse("localhost,http://x/")


@pytest.mark.parametrize("value", [True, "true", "all"])
def test_true_still_admits_every_private_address(value: bool | str) -> None:
    setting = Settings(fetch_allow_private=value).fetch_allow_private  # type: ignore[arg-type]
    assert AddressPolicy.parse(setting).choose("x", 1234, ["127.0.0.1"])


def test_default_settings_admit_no_private_address() -> None:
    policy = AddressPolicy.parse(Settings().fetch_allow_private)
    with pytest.raises(PermanentError):
        policy.choose("localhost", 80, ["127.0.0.1"])
