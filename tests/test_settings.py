"""Settings: where the key, region and hosts come from, and every bad value rejected by name."""

from __future__ import annotations

import pytest
from pulumi_sendgrid_tracking import config as settings
from pulumi_sendgrid_tracking.errors import ConfigurationError

from .conftest import TEST_KEY


def test_defaults_are_the_real_hosts() -> None:
    resolved = settings.resolve({"sendgrid:apiKey": TEST_KEY}, {})
    assert resolved.region == "global"
    assert resolved.base_urls == {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
    assert (resolved.request_timeout, resolved.retry_budget) == (30.0, 120.0)


def test_stack_config_wins_over_environment() -> None:
    resolved = settings.resolve(
        {"sendgrid:apiKey": "SG.from-config", "sendgrid:region": "eu"},
        {"SENDGRID_API_KEY": "SG.from-env", "SENDGRID_REGION": "global"},
    )
    assert (resolved.api_key, resolved.region) == ("SG.from-config", "eu")


def test_environment_is_the_fallback() -> None:
    resolved = settings.resolve(
        {},
        {
            "SENDGRID_API_KEY": TEST_KEY,
            "SENDGRID_BASE_URL": "http://127.0.0.1:9000/",
            "SENDGRID_EU_BASE_URL": "http://localhost:9001",
            "SENDGRID_REQUEST_TIMEOUT": "2.5",
            "SENDGRID_RETRY_BUDGET": "10",
        },
    )
    assert resolved.base_urls == {"global": "http://127.0.0.1:9000", "eu": "http://localhost:9001"}
    assert (resolved.request_timeout, resolved.retry_budget) == (2.5, 10.0)


def test_repr_hides_the_key() -> None:
    assert TEST_KEY not in repr(settings.resolve({"sendgrid:apiKey": TEST_KEY}, {}))


def test_missing_key_says_where_to_set_it() -> None:
    with pytest.raises(ConfigurationError) as info:
        settings.resolve({}, {})
    assert str(info.value) == (
        "invalid setting sendgrid:apiKey (or SENDGRID_API_KEY): no SendGrid API key is set. "
        "Hint: set one with `pulumi config set --secret sendgrid:apiKey <key>` or the SENDGRID_API_KEY "
        "environment variable."
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("SG.key with space", "whitespace"),
        (" SG.leading", "whitespace"),
        ("SG.new\nline", "control"),
        ("SG.ключ", "non-ASCII"),
        ("SG." + "x" * 600, "implausibly long"),
    ],
)
def test_unsendable_keys_are_rejected_without_echoing_them(key: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        settings.resolve({"sendgrid:apiKey": key}, {})
    assert reason in str(info.value)
    assert key.strip() not in str(info.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.sendgrid.com", "plain http to 'api.sendgrid.com' would send the API key unencrypted"),
        ("http://10.0.0.5:8080", "plain http to '10.0.0.5'"),
        ("https://user:pw@api.sendgrid.com", "the URL contains credentials"),
        ("https://api.sendgrid.com/v3", "the URL has a path, query or fragment"),
        ("https://api.sendgrid.com?x=1", "the URL has a path, query or fragment"),
        ("ftp://api.sendgrid.com", "is not an http(s) URL with a host"),
        ("api.sendgrid.com", "is not an http(s) URL with a host"),
        ("https://api.sendgrid.com:99999", "not a valid URL"),
        ("https://api.send grid.com", "spaces or control characters"),
    ],
)
def test_bad_base_urls_are_rejected_with_the_setting_named(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        settings.resolve({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": url}, {})
    assert str(info.value).startswith("invalid setting sendgrid:baseUrl: ")
    assert reason in str(info.value)
    assert "Hint:" in str(info.value)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api.sendgrid.com/", "https://api.sendgrid.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://localhost:1", "http://localhost:1"),
    ],
)
def test_good_base_urls(url: str, normalised: str) -> None:
    assert settings.validate_base_url(url, "x") == normalised


def test_unknown_region_named() -> None:
    with pytest.raises(ConfigurationError, match=r"invalid setting SENDGRID_REGION: unknown region 'us'.*global, eu"):
        settings.resolve({"sendgrid:apiKey": TEST_KEY}, {"SENDGRID_REGION": "us"})


def test_eu_traffic_never_goes_to_a_host_chosen_for_global() -> None:
    resolved = settings.resolve({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": "http://127.0.0.1:1"}, {})
    with pytest.raises(ConfigurationError, match="set sendgrid:euBaseUrl"):
        settings.base_url_for(resolved, "eu")


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "4000"])
def test_bad_timeouts(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"sendgrid:requestTimeout.*number between 0 and 3600"):
        settings.resolve({"sendgrid:apiKey": TEST_KEY, "sendgrid:requestTimeout": value}, {})
