"""The stack's originals ledger (`OriginalsLogic`), with requests-mock: what it reads, keeps, drops and records.

One resource per stack. Its input `accounts` lists each declared account setting and its managed fields;
its output `entries` holds, per setting key, the value of each managed field before this stack first took
it over. It reads only what it holds no original of, in parallel, and never sends a change.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pulumi
import pytest
import requests_mock
from pulumi_sendgrid_tracking import OriginalsProvider
from pulumi_sendgrid_tracking.emulator import Emulator
from pulumi_sendgrid_tracking.singleton import RUN, OriginalsLogic, ledger_text
from pulumi_sendgrid_tracking.tracking import CLICK, GOOGLE_ANALYTICS, SETTINGS, SUBSCRIPTION

from .conftest import TEST_KEY, configured
from .test_singleton import CASES, FORBIDDEN, GLOBAL, sent

EU = "https://api.eu.sendgrid.com"
UNKNOWN = pulumi.output.Unknown()

CLICK_PARENT = "click/global"
CLICK_ALICE = "click/global/alice"
SUBSCRIPTION_BOB = "subscription/global/bob"
GA_CAROL = "google_analytics/eu/carol"

FOUND = {
    CLICK_PARENT: {"enabled": True, "enable_text": False},
    CLICK_ALICE: {"enabled": False, "enable_text": False},
    SUBSCRIPTION_BOB: {
        "enabled": True,
        "html_content": "<p><% Bye %></p>",
        "plain_content": "",
        "replace": "",
        "landing": "",
    },  # no url yet
    GA_CAROL: {
        "enabled": False,
        "utm_source": "sendgrid.com",
        "utm_medium": "email",
        "utm_term": "",
        "utm_content": "",
        "utm_campaign": "website",
    },
}
"""What SendGrid holds for each account setting (absent fields left out, as SendGrid does)."""


def spec(key: str, *managed: str) -> list[str]:
    """An `accounts` entry, as resources.py declares it: the managed fields (the key names the account)."""
    return list(managed or ["enabled"])


def spec_030(key: str, *managed: str) -> dict[str, Any]:
    """An `accounts` entry as an earlier 0.3.0 declared it: the account again, and the managed fields."""
    setting, region, *rest = key.split("/", 2)
    return {
        "setting": setting,
        "region": region,
        "on_behalf_of": rest[0] if rest else None,
        "managed": spec(key, *managed),
    }


def obo(key: str) -> str | None:
    """The on-behalf-of of a setting key's account."""
    rest = key.split("/", 2)[2:]
    return rest[0] if rest else None


def url(key: str) -> str:
    setting, region = key.split("/")[:2]
    return (EU if region == "eu" else GLOBAL) + SETTINGS[setting].path


def entry(originals: dict[str, Any], **kw: Any) -> str:
    """A ledger entry as the ledger keeps it: JSON text, nulls kept."""
    text = json.dumps({"originals": originals, **kw}, sort_keys=True, separators=(",", ":"))
    assert text == ledger_text(originals, **kw)
    return text


def entry_030(originals: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A ledger entry as an earlier 0.3.0 kept it: a mapping, nulls left out and the names apart."""
    return {"originals": {k: v for k, v in originals.items() if v is not None}, "held": sorted(originals), **kw}


def found(key: str, *fields: str) -> dict[str, Any]:
    return {name: FOUND[key].get(name) for name in fields or ("enabled",)}


@pytest.fixture
def ledger() -> OriginalsLogic:
    return configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)


@pytest.fixture
def http() -> Any:
    with requests_mock.Mocker() as mock:
        yield mock


def serve(http: Any, *keys: str) -> None:
    """Answer GETs of these account settings with FOUND."""
    by_url: dict[str, dict[str | None, dict[str, Any]]] = {}
    for key in keys:
        by_url.setdefault(url(key), {})[obo(key)] = FOUND[key]
    for address, answers in by_url.items():

        def answer(request: Any, _context: Any, answers: dict[str | None, dict[str, Any]] = answers) -> Any:
            return answers[request.headers.get("on-behalf-of")]

        http.get(address, json=answer)


# -- create and update: read what has no original yet, in parallel -------------------------------


def test_create_reads_every_declared_account_once(ledger: OriginalsLogic, http: Any) -> None:
    accounts = {
        CLICK_PARENT: spec(CLICK_PARENT),
        CLICK_ALICE: spec(CLICK_ALICE),
        SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "url"),
        GA_CAROL: spec(GA_CAROL, "enabled", "utm_campaign"),
    }
    serve(http, *accounts)
    result = ledger.create({"accounts": accounts})
    assert sorted((m, u, obo or "") for m, u, obo, _ in sent(http)) == sorted(
        ("GET", url(key), obo(key) or "") for key in accounts
    )
    assert result.id == "originals"
    assert result.outs == {
        "entries": {
            CLICK_PARENT: entry({"enabled": True}),
            CLICK_ALICE: entry({"enabled": False}),
            SUBSCRIPTION_BOB: '{"originals":{"enabled":true,"url":null}}',  # url absent: null, kept
            GA_CAROL: entry({"enabled": False, "utm_campaign": "website"}),
        },
    }
    # What it read is a hint for the settings' creates of this run (they skip their own GET).
    assert RUN.take_fresh(SUBSCRIPTION_BOB) == SUBSCRIPTION.parse(FOUND[SUBSCRIPTION_BOB])
    assert RUN.take_fresh(GA_CAROL) == GOOGLE_ANALYTICS.parse(FOUND[GA_CAROL])


def test_update_reads_only_accounts_and_fields_without_an_original(ledger: OriginalsLogic, http: Any) -> None:
    olds = {
        "accounts": {CLICK_PARENT: spec(CLICK_PARENT), SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB)},
        "entries": {
            CLICK_PARENT: entry({"enabled": False}),  # SendGrid holds True now (this stack wrote it): kept
            SUBSCRIPTION_BOB: entry({"enabled": False}),
        },
    }
    news = {
        CLICK_PARENT: spec(CLICK_PARENT),
        SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "html_content"),  # a field newly managed
        CLICK_ALICE: spec(CLICK_ALICE),  # an account newly declared
    }
    serve(http, *news)
    assert ledger.diff("originals", olds, {"accounts": news}).changes is True
    assert http.call_count == 0  # diff is local
    result = ledger.update("originals", olds, {"accounts": news})
    assert sorted((m, obo) for m, _, obo, _ in sent(http)) == [("GET", "alice"), ("GET", "bob")]
    assert result.outs == {
        "entries": {
            CLICK_PARENT: entry({"enabled": False}),
            SUBSCRIPTION_BOB: entry({"enabled": False, "html_content": "<p><% Bye %></p>"}),  # enabled kept
            CLICK_ALICE: entry({"enabled": False}),
        },
    }


def test_a_field_managed_unmanaged_and_managed_again_keeps_its_first_original(
    ledger: OriginalsLogic, http: Any
) -> None:
    first = {"enabled": False, "url": "https://example.com/first"}
    state = {"accounts": {SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "url")}, "entries": {}}
    state["entries"] = {SUBSCRIPTION_BOB: entry(first)}
    for managed in (["enabled"], ["enabled", "url"]):
        news = {"accounts": {SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, *managed)}}
        assert ledger.diff("originals", state, news).changes is False  # nothing to read
        state = ledger.update("originals", state, news).outs
        assert state["entries"] == {SUBSCRIPTION_BOB: entry(first)}
    assert http.call_count == 0


def test_an_account_no_longer_declared_is_released_without_a_request(ledger: OriginalsLogic, http: Any) -> None:
    olds = {
        "accounts": {CLICK_PARENT: spec(CLICK_PARENT), CLICK_ALICE: spec(CLICK_ALICE)},
        "entries": {CLICK_PARENT: entry({"enabled": True}), CLICK_ALICE: entry({"enabled": False})},
    }
    news = {"accounts": {CLICK_PARENT: spec(CLICK_PARENT)}}
    assert ledger.diff("originals", olds, news).changes is True
    released = ledger.update("originals", olds, news).outs
    assert released == {
        "entries": {
            CLICK_PARENT: entry({"enabled": True}),
            CLICK_ALICE: entry({"enabled": False}, released=True),
        },
    }
    assert ledger.diff("originals", released, news).changes is False  # released is no pending change
    # Declared again (its give-back may have failed: SendGrid may hold this stack's value): no read, the original.
    again = {"accounts": {CLICK_PARENT: spec(CLICK_PARENT), CLICK_ALICE: spec(CLICK_ALICE)}}
    assert ledger.diff("originals", released, again).changes is True
    assert ledger.update("originals", released, again).outs["entries"][CLICK_ALICE] == entry({"enabled": False})
    assert http.call_count == 0


def test_a_read_error_is_recorded_in_its_entry_and_the_others_are_read(ledger: OriginalsLogic, http: Any) -> None:
    accounts = {
        CLICK_ALICE: spec(CLICK_ALICE),
        "click/global/bob": spec("click/global/bob"),
        SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "url"),  # bob's enabled is held: kept with the error
    }
    olds = {"accounts": {}, "entries": {SUBSCRIPTION_BOB: entry({"enabled": True})}}

    def answer(request: Any, context: Any) -> Any:
        if request.headers.get("on-behalf-of") == "bob":
            context.status_code = 403
            return FORBIDDEN
        return FOUND[CLICK_ALICE]

    http.get(url(CLICK_ALICE), json=answer)
    http.get(url(SUBSCRIPTION_BOB), status_code=500, json={"errors": [{"message": "boom"}]})
    entries = ledger.update("originals", olds, {"accounts": accounts}).outs["entries"]
    # Read once each, as a new account (no probe of the parent account: that is for accounts already managed).
    assert sorted((m, u, obo) for m, u, obo, _ in sent(http)) == [
        ("GET", url(CLICK_ALICE), "alice"),
        ("GET", url(CLICK_ALICE), "bob"),
        ("GET", url(SUBSCRIPTION_BOB), "bob"),
    ]
    assert entries[CLICK_ALICE] == entry({"enabled": False})
    assert entries["click/global/bob"] == entry(
        {},
        error=(
            "GET /v3/tracking_settings/click on behalf of 'bob' failed (403): access forbidden. Hint: the key needs "
            "the tracking_settings.click.read scope, and 'bob' must be a subuser (or customer account) of the "
            "key's account."
        ),
    )
    assert entries[SUBSCRIPTION_BOB] == entry(
        {"enabled": True},
        error=(
            "GET /v3/tracking_settings/subscription on behalf of 'bob' failed (500): boom. Hint: SendGrid kept "
            "failing after 1 attempt(s); try again later."
        ),
    )
    assert RUN.take_fresh("click/global/bob") is None
    # The next run reads again what failed, and only that.
    state = {"accounts": accounts, "entries": entries}
    assert ledger.diff("originals", state, {"accounts": accounts}).changes is True
    http.reset_mock()
    http.get(url(CLICK_ALICE), json={"enabled": True, "enable_text": False})
    http.get(url(SUBSCRIPTION_BOB), json=FOUND[SUBSCRIPTION_BOB])
    entries = ledger.update("originals", state, {"accounts": accounts}).outs["entries"]
    assert sorted((u, obo) for _, u, obo, _ in sent(http)) == [
        (url(CLICK_ALICE), "bob"),
        (url(SUBSCRIPTION_BOB), "bob"),
    ]
    assert entries == {
        CLICK_ALICE: entry({"enabled": False}),
        "click/global/bob": entry({"enabled": True}),
        SUBSCRIPTION_BOB: entry({"enabled": True, "url": None}),
    }


# -- diff, read, delete: local, nothing sent ------------------------------------------------------


def test_diff_says_no_change_when_nothing_is_to_read(ledger: OriginalsLogic, http: Any) -> None:
    accounts = {CLICK_PARENT: spec(CLICK_PARENT), SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled")}
    olds = {
        "accounts": accounts,
        "entries": {
            CLICK_PARENT: entry({"enabled": True}),
            SUBSCRIPTION_BOB: entry({"enabled": True, "url": None}),  # url held too (absent): no read
        },
    }

    def changes(news: Any) -> bool:
        result = ledger.diff("originals", olds, {"accounts": news, "__provider": "p"})
        assert not result.replaces
        return bool(result.changes)

    assert changes(accounts) is False
    assert changes({**accounts, SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "url")}) is False
    assert changes({**accounts, SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "landing")}) is True
    assert changes({**accounts, CLICK_ALICE: spec(CLICK_ALICE)}) is True
    assert changes({CLICK_PARENT: spec(CLICK_PARENT)}) is True
    assert changes(UNKNOWN) is True
    assert http.call_count == 0


def test_read_and_delete_send_nothing(ledger: OriginalsLogic, http: Any) -> None:
    state = {"entries": {CLICK_PARENT: entry({"enabled": True})}}
    result = ledger.read("originals", {**state, "__provider": "p"})
    # No inputs: the engine keeps the recorded ones (the declared accounts are kept once, as inputs).
    assert (result.id, result.outs, result.inputs) == ("originals", state, None)
    ledger.delete("originals", state)
    assert http.call_count == 0


# -- check: what the program declared --------------------------------------------------------------


def test_check_keeps_the_accounts_and_declares_them_for_this_run(ledger: OriginalsLogic, http: Any) -> None:
    accounts = {CLICK_PARENT: spec(CLICK_PARENT), GA_CAROL: spec(GA_CAROL, "enabled", "utm_source")}
    result = ledger.check({}, {"accounts": accounts, "entries": None, "__provider": "p"})
    assert (result.inputs, result.failures) == ({"accounts": accounts}, [])
    assert RUN.declared(CLICK_PARENT) and RUN.declared(GA_CAROL) and not RUN.declared(CLICK_ALICE)
    assert ledger.check({}, {"accounts": UNKNOWN}).failures == []
    assert http.call_count == 0


@pytest.mark.parametrize(
    ("news", "prop", "reason"),
    [
        ({"accounts": ["click/global"]}, "accounts", "accounts must be a mapping of setting keys"),
        ({"accounts": None}, "accounts", "accounts must be a mapping of setting keys"),
        *(
            (
                {"accounts": {key: spec(CLICK_PARENT)}},
                "accounts",
                f"accounts[{key!r}] does not name that setting's fields",
            )
            for key in ("bounce/global", "click/mars", "click", "click/global/", "click/Global/alice", "")
        ),
        *(
            ({"accounts": {CLICK_PARENT: given}}, "accounts", "accounts['click/global'] does not name")
            for given in (
                "enabled",
                None,
                spec(CLICK_PARENT, "enabled", "enable_text"),  # read-only
                [{"enabled": True}],
                spec_030(CLICK_PARENT),  # the program declares the fields only
            )
        ),
        ({"accounts": {}, "colour": "red"}, "colour", "unknown property 'colour' of the originals ledger"),
    ],
)
def test_check_refuses_malformed_accounts_before_anything_is_sent(
    ledger: OriginalsLogic, http: Any, news: dict[str, Any], prop: str, reason: str
) -> None:
    failures = ledger.check({}, news).failures
    assert [f.property for f in failures] == [prop]
    assert reason in failures[0].reason
    assert http.call_count == 0


# -- with the settings, in one provider process ----------------------------------------------------


def test_taking_over_n_accounts_costs_one_get_each_and_a_patch_only_where_different(emulator: Emulator) -> None:
    config = {"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": emulator.base_url}
    names = ["alice", "bob", "carol"]
    for name in names:
        emulator.state.add_subuser("global", name, enabled=name != "carol")
    ledger = configured(config, OriginalsProvider)
    accounts = {f"click/global/{n}": spec(f"click/global/{n}") for n in names}
    entries = ledger.create({"accounts": accounts}).outs["entries"]
    assert entries == {
        "click/global/alice": entry({"enabled": True}),
        "click/global/bob": entry({"enabled": True}),
        "click/global/carol": entry({"enabled": False}),
    }
    click = configured(config, CASES["click"].provider)
    for name in names:
        inputs = {"enabled": False, "on_behalf_of": name, "region": "global", "on_delete": "restore", "name": name}
        outs = click.create({**inputs, "ledger": entries[f"click/global/{name}"]}).outs
        assert (outs["enabled"], outs["original_enabled"]) == (False, name != "carol")
    log = sorted((e["method"], e["on_behalf_of"], e["body"]) for e in emulator.state.request_log())
    assert log == [
        ("GET", "alice", None),
        ("GET", "bob", None),
        ("GET", "carol", None),
        ("PATCH", "alice", {"enabled": False}),
        ("PATCH", "bob", {"enabled": False}),
    ]
    assert CLICK.name == "click"


def test_the_reads_run_in_parallel(emulator: Emulator) -> None:
    # requests-mock serializes requests, so this one runs against the emulator: 1 s per answer, 4 accounts.
    names = ["alice", "bob", "carol", "dave"]
    for name in names:
        emulator.state.add_subuser("global", name)
    emulator.state.configure(latency=1.0)
    ledger = configured({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": emulator.base_url}, OriginalsProvider)
    started = time.monotonic()
    entries = ledger.create({"accounts": {f"click/global/{n}": spec(f"click/global/{n}") for n in names}}).outs
    elapsed = time.monotonic() - started
    assert sorted(e["on_behalf_of"] for e in emulator.state.request_log()) == names  # one GET each
    assert len(entries["entries"]) == len(names)
    assert elapsed < 2.5, f"{elapsed:.2f}s: read one at a time (4 s) rather than together (1 s)"


def test_a_ledger_an_earlier_030_wrote_keeps_its_originals(ledger: OriginalsLogic, http: Any) -> None:
    """Its entries are mappings (nulls left out, the names apart) until its next change, then JSON text."""
    olds = {
        "accounts": {
            CLICK_PARENT: spec_030(CLICK_PARENT),
            SUBSCRIPTION_BOB: spec_030(SUBSCRIPTION_BOB, "enabled", "url"),
        },
        "entries": {
            CLICK_PARENT: entry_030({"enabled": True}),
            SUBSCRIPTION_BOB: entry_030({"enabled": False, "url": None}),  # url absent: null
            CLICK_ALICE: entry_030({"enabled": False}, released=True),
        },
    }
    same = {"accounts": {CLICK_PARENT: spec(CLICK_PARENT), SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "url")}}
    assert ledger.diff("originals", olds, same).changes is False
    again = {"accounts": {**same["accounts"], CLICK_ALICE: spec(CLICK_ALICE)}}
    assert ledger.diff("originals", olds, again).changes is True
    assert ledger.update("originals", olds, again).outs == {
        "entries": {
            CLICK_PARENT: entry({"enabled": True}),
            SUBSCRIPTION_BOB: entry({"enabled": False, "url": None}),
            CLICK_ALICE: entry({"enabled": False}),
        }
    }
    assert http.call_count == 0


def test_a_ledger_of_both_forms_after_a_reshard_is_read_entry_by_entry(ledger: OriginalsLogic, http: Any) -> None:
    """`pipelines/shards reshard` carries entries as they are: an earlier 0.3.0 shard's mappings can join a
    ledger of JSON texts. Each entry is read in its own form; the next change writes them all as text."""
    olds = {
        "accounts": {CLICK_PARENT: spec(CLICK_PARENT), SUBSCRIPTION_BOB: spec_030(SUBSCRIPTION_BOB, "enabled", "url")},
        "entries": {
            CLICK_PARENT: entry({"enabled": True}),
            SUBSCRIPTION_BOB: entry_030({"enabled": False, "url": None}),
        },
    }
    declared = {CLICK_PARENT: spec(CLICK_PARENT), SUBSCRIPTION_BOB: spec(SUBSCRIPTION_BOB, "enabled", "url")}
    assert ledger.diff("originals", olds, {"accounts": declared}).changes is False
    serve(http, CLICK_ALICE)
    more = {"accounts": {**declared, CLICK_ALICE: spec(CLICK_ALICE)}}
    assert ledger.update("originals", olds, more).outs == {
        "entries": {
            CLICK_PARENT: entry({"enabled": True}),
            SUBSCRIPTION_BOB: entry({"enabled": False, "url": None}),
            CLICK_ALICE: entry({"enabled": False}),
        }
    }
    assert [(m, u, obo) for m, u, obo, _ in sent(http)] == [("GET", url(CLICK_ALICE), "alice")]


def test_a_username_with_a_slash_is_one_account_in_the_ledgers_key(ledger: OriginalsLogic, http: Any) -> None:
    """A username may hold `/` (on_behalf_of allows printable ASCII): `click/global/team/a` is subuser `team/a`."""
    key = "click/global/team/a"
    http.get(url(key), json={"enabled": True, "enable_text": False})
    checked = ledger.check({}, {"accounts": {key: ["enabled"]}})
    assert checked.failures == []
    assert ledger.create(checked.inputs).outs == {"entries": {key: entry({"enabled": True})}}
    assert [(m, obo) for m, _, obo, _ in sent(http)] == [("GET", "team/a")]
