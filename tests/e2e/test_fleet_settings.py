"""The repository's program with per-setting fleets, through the real engine against the emulator.

The upgrade from the click-only program changes nothing; new setting blocks create exactly their
resources (and the stack's ledger reads each new account setting once) and PATCH only the managed
fields that differ; defaults apply and
are overridden; a setting removed from an account is put back per its onDelete.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tools.pulumi_project import PROJECT, ROOT

from .conftest import PulumiProject

URL = "https://example.com/unsubscribe"
PLAIN = "Unsubscribe: <% %>"
SETTING_TYPES = ("ClickTracking", "OpenTracking", "SubscriptionTracking", "GoogleAnalytics")

CLICK_ONLY_PROGRAM = '''
"""The click-only program (before per-setting fleets), frozen: for a valid fleet in its shape it
declared one ClickTracking per account, named parent / subuser-<username> / account-<id>, with the
account's enabled, region (None when absent) and onDelete (default restore), and exported clickTracking."""
import pulumi
import yaml
from pulumi_sendgrid_tracking import ClickTracking

fleet = yaml.safe_load(open(pulumi.Config().require("fleetFile"), encoding="utf-8"))
accounts = [("parent", None, fleet["parent"])] if "parent" in fleet else []
for raw in fleet.get("subusers", []):
    if "username" in raw:
        accounts.append((f"subuser-{raw['username']}", raw["username"], raw))
    else:
        accounts.append((f"account-{raw['accountId']}", f"account-id {raw['accountId']}", raw))
resources = {
    name: ClickTracking(
        name,
        enabled=raw["enabled"],
        on_behalf_of=on_behalf_of,
        region=raw.get("region"),
        on_delete=raw.get("onDelete", "restore"),
    )
    for name, on_behalf_of, raw in accounts
}
pulumi.export(
    "clickTracking",
    {
        name: {
            "id": r.id,
            "enabled": r.enabled,
            "enable_text": r.enable_text,
            "original_enabled": r.original_enabled,
            "region": r.region,
        }
        for name, r in resources.items()
    },
)
'''

TODAYS_FLEET = """
parent:
  enabled: true
subusers:
  - username: alice
    enabled: false
  - username: carol
    enabled: true
    region: eu
    onDelete: disable
"""


def write_fleet(project: PulumiProject, text: str) -> None:
    """The stack reads its fleet from fleet.yaml (the stack file keeps its encryptionsalt)."""
    (project.dir / "fleet.yaml").write_text(text)
    path = project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data = data or {}
    data["config"] = {f"{PROJECT}:fleetFile": "fleet.yaml"}
    path.write_text(yaml.safe_dump(data))


def use_program(project: PulumiProject, text: str | None = None) -> None:
    """The repository's __main__.py, or another program."""
    (project.dir / "__main__.py").write_text(text if text is not None else (ROOT / "__main__.py").read_text())


def requests(project: PulumiProject) -> list[tuple[str, str, str, str | None, Any]]:
    """(world, method, setting, on-behalf-of, body) of every API request since the last call."""
    return [
        (world, method, path.rsplit("/", 1)[1], obo, body)
        for world, method, path, obo, body in _new_log_entries(project)
    ]


def _new_log_entries(project: PulumiProject) -> list[tuple[str, str, str, str | None, Any]]:
    log = project.emulator.state.request_log()
    seen = getattr(project, "_fleet_seen", 0)
    project._fleet_seen = len(log)  # type: ignore[attr-defined]
    return [(e["world"], e["method"], e["path"], e["on_behalf_of"], e["body"]) for e in log[seen:]]


def state(project: PulumiProject) -> dict[str, tuple[str, dict[str, Any]]]:
    """The program's resource name → (type, outputs) of every sendgrid resource in the state, the stack's
    ledger (`originals`) included. The engine names a setting by its account; the program's name is `name`."""
    return {
        r.get("outputs", {}).get("name") or r["urn"].rsplit("::", 1)[1]: (
            r["type"].rsplit(":", 1)[1],
            r.get("outputs", {}),
        )
        for r in project.export()["deployment"].get("resources", [])
        if r["type"].startswith("pulumi-python:dynamic/sendgrid:")
    }


def planned(project: PulumiProject) -> set[tuple[str, str, str]]:
    """(op, type, engine name) of every step of `pulumi preview` that is not `same`: a setting's engine name
    is its account (`global/alice`), the ledger's `originals`."""
    data = json.loads(project.run("preview", "--json").stdout)
    return {
        (step["op"], step["urn"].split("::")[2].rsplit(":", 1)[1], step["urn"].rsplit("::", 1)[1])
        for step in data.get("steps", [])
        if step["op"] != "same"
    }


def live(project: PulumiProject, world: str, user: str | None, kind: str) -> dict[str, Any]:
    data = project.emulator.state.snapshot()[world]
    return dict((data["parent"] if user is None else data["subusers"][user])[kind])


def in_step(project: PulumiProject) -> None:
    """Preview sees no change and sends nothing."""
    requests(project)
    project.run("preview", "--expect-no-changes")
    assert requests(project) == []


# -- (a) the upgrade, then new setting blocks ----------------------------------------------------


def test_upgrade_from_the_click_only_program_then_add_settings(project: PulumiProject) -> None:
    emulator = project.emulator.state
    # What alice had before the stack touched anything besides click tracking.
    emulator.set_out_of_band("global", "alice", "open", {"enabled": False})
    emulator.set_out_of_band(
        "global", "alice", "subscription", {"enabled": False, "html_content": "<p>Bye? <% here %></p>"}
    )
    emulator.set_out_of_band("global", "alice", "google_analytics", {"enabled": False, "utm_source": "legacy"})
    untouched = {kind: live(project, "global", "alice", kind) for kind in ("open", "subscription", "google_analytics")}

    use_program(project, CLICK_ONLY_PROGRAM)
    write_fleet(project, TODAYS_FLEET)
    project.up()
    before = state(project)
    outputs_before = project.outputs_json()
    assert sorted(name for name, (kind, _) in before.items() if kind in SETTING_TYPES) == [
        "parent",
        "subuser-alice",
        "subuser-carol",
    ]

    use_program(project)  # the upgrade: same fleet file, today's shape
    in_step(project)
    requests(project)
    project.up()
    assert requests(project) == []
    assert state(project) == before
    outputs = project.outputs_json()
    assert outputs["clickTracking"] == outputs_before["clickTracking"]  # the export scripts read is unchanged
    assert outputs["trackingSettings"]["subuser-carol"] == {
        "account": "eu/carol",
        "setting": "click",
        "enabled": True,
        "original_enabled": True,
    }

    # The same click tracking in blocks, and new settings for alice and carol.
    write_fleet(
        project,
        f"""
parent:
  click: {{enabled: true}}
subusers:
  - username: alice
    click: {{enabled: false}}
    open: {{enabled: false}}
    subscription: {{enabled: true, url: {URL}, plainContent: "{PLAIN}"}}
    googleAnalytics: {{enabled: true, utmCampaign: spring}}
  - username: carol
    region: eu
    click: {{enabled: true, onDelete: disable}}
    open: {{enabled: false}}
""",
    )
    assert planned(project) == {
        ("create", "OpenTracking", "global/alice"),
        ("create", "SubscriptionTracking", "global/alice"),
        ("create", "GoogleAnalytics", "global/alice"),
        ("create", "OpenTracking", "eu/carol"),
        ("update", "Originals", "originals"),  # the ledger reads the new account settings
    }
    assert requests(project) == []  # preview sends nothing
    project.up()
    sent = requests(project)
    assert sorted(r for r in sent if r[1] == "GET") == [  # the ledger's one read per new setting, nothing else
        ("eu", "GET", "open", "carol", None),
        ("global", "GET", "google_analytics", "alice", None),
        ("global", "GET", "open", "alice", None),
        ("global", "GET", "subscription", "alice", None),
    ]
    assert sorted(r for r in sent if r[1] == "PATCH") == [  # only the managed fields that differ
        ("eu", "PATCH", "open", "carol", {"enabled": False}),
        ("global", "PATCH", "google_analytics", "alice", {"enabled": True, "utm_campaign": "spring"}),
        ("global", "PATCH", "subscription", "alice", {"enabled": True, "plain_content": PLAIN, "url": URL}),
    ]  # alice's open tracking was already off: no PATCH
    assert len(sent) == 7

    assert live(project, "global", "alice", "open") == untouched["open"]
    assert live(project, "global", "alice", "subscription") == {
        **untouched["subscription"],
        "enabled": True,
        "plain_content": PLAIN,
        "url": URL,
    }  # html_content, replace and landing: unmanaged, unchanged
    assert live(project, "global", "alice", "google_analytics") == {
        **untouched["google_analytics"],
        "enabled": True,
        "utm_campaign": "spring",
    }  # utm_source stays "legacy"
    assert live(project, "eu", "carol", "open") == {"enabled": False}

    after = state(project)
    assert {name: kind for name, (kind, _) in after.items()} == {
        **{name: kind for name, (kind, _) in before.items()},
        "open-subuser-alice": "OpenTracking",
        "subscription-subuser-alice": "SubscriptionTracking",
        "google-analytics-subuser-alice": "GoogleAnalytics",
        "open-subuser-carol": "OpenTracking",
    }
    for name in before:
        if name != "originals":
            assert after[name] == before[name], name  # the click resources are untouched
    # The ledger recorded each new setting's managed fields as SendGrid held them (no url yet: null), and
    # the click settings' entries are as they were.
    entries = after["originals"][1]["entries"]
    assert json.loads(entries["subscription/global/alice"]) == {
        "originals": {"enabled": False, "plain_content": "", "url": None},
    }
    assert {k: v for k, v in entries.items() if k.startswith("click/")} == before["originals"][1]["entries"]
    subscription = after["subscription-subuser-alice"][1]
    assert subscription["managed_fields"] == ["enabled", "plain_content", "url"]
    assert (subscription["original_enabled"], subscription["original_plain_content"]) == (False, "")
    assert (subscription["originals"], subscription["held_fields"]) == (
        {"enabled": False, "plain_content": ""},
        ["enabled", "plain_content", "url"],
    )
    assert subscription.get("original_html_content") is None  # unmanaged: no original recorded
    assert after["google-analytics-subuser-alice"][1]["original_utm_campaign"] == ""

    exported = project.outputs_json()["trackingSettings"]
    assert exported["subscription-subuser-alice"] == {
        "account": "global/alice",
        "setting": "subscription",
        "enabled": True,
        "plain_content": PLAIN,
        "url": URL,
        "original_enabled": False,
    }
    assert exported["google-analytics-subuser-alice"]["utm_campaign"] == "spring"
    assert exported["open-subuser-carol"] == {
        "account": "eu/carol",
        "setting": "open",
        "enabled": False,
        "original_enabled": True,
    }
    in_step(project)


# -- (b) defaults, applied and overridden --------------------------------------------------------


def test_defaults_are_applied_and_overridden(project: PulumiProject) -> None:
    emulator = project.emulator.state
    subscription_before = live(project, "global", "alice", "subscription")
    write_fleet(
        project,
        f"""
defaults:
  click: {{enabled: true}}
  open: {{enabled: false, onDelete: keep}}
  subscription: {{enabled: true, url: {URL}}}
parent: {{}}
subusers:
  - username: alice
    open: {{enabled: true}}
    subscription: {{manage: false}}
  - username: carol
    region: eu
    click: {{enabled: false}}
    subscription: {{plainContent: "{PLAIN}"}}
""",
    )
    emulator.set_out_of_band("global", None, "click", {"enabled": False})
    project.up()
    settings = {name: (kind, outs) for name, (kind, outs) in state(project).items() if kind in SETTING_TYPES}
    assert {name: kind for name, (kind, _) in settings.items()} == {
        "parent": "ClickTracking",
        "open-parent": "OpenTracking",
        "subscription-parent": "SubscriptionTracking",
        "subuser-alice": "ClickTracking",
        "open-subuser-alice": "OpenTracking",
        "subuser-carol": "ClickTracking",
        "open-subuser-carol": "OpenTracking",
        "subscription-subuser-carol": "SubscriptionTracking",
    }
    # The defaults, where nothing overrides them.
    assert live(project, "global", None, "click")["enabled"] is True
    assert live(project, "global", None, "open")["enabled"] is False
    assert live(project, "global", None, "subscription") | {"enabled": True, "url": URL} == live(
        project, "global", None, "subscription"
    )
    # alice: open overridden (onDelete still the default's keep), subscription left alone.
    assert live(project, "global", "alice", "open")["enabled"] is True
    assert settings["open-subuser-alice"][1]["on_delete"] == "keep"
    assert live(project, "global", "alice", "subscription") == subscription_before
    # carol: click overridden; subscription merged field by field.
    assert live(project, "eu", "carol", "click")["enabled"] is False
    assert settings["subscription-subuser-carol"][1]["managed_fields"] == ["enabled", "plain_content", "url"]
    carol = live(project, "eu", "carol", "subscription")
    assert (carol["enabled"], carol["url"], carol["plain_content"]) == (True, URL, PLAIN)
    in_step(project)

    # A changed default reaches the accounts that inherit it, and only those.
    write_fleet(
        project,
        (project.dir / "fleet.yaml")
        .read_text()
        .replace("open: {enabled: false, onDelete: keep}", "open: {enabled: true, onDelete: keep}"),
    )
    assert planned(project) == {
        ("update", "OpenTracking", "global"),
        ("update", "OpenTracking", "eu/carol"),
    }
    project.up()
    assert sorted(r for r in requests(project) if r[1] == "PATCH") == [
        ("eu", "PATCH", "open", "carol", {"enabled": True}),
        ("global", "PATCH", "open", None, {"enabled": True}),
    ]
    in_step(project)


# -- (c) a setting removed from an account ------------------------------------------------------


def test_a_removed_setting_is_put_back_per_on_delete(project: PulumiProject) -> None:
    emulator = project.emulator.state
    emulator.set_out_of_band("global", "alice", "google_analytics", {"utm_campaign": "before"})
    write_fleet(
        project,
        f"""
subusers:
  - username: alice
    click: {{enabled: true}}
    open: {{enabled: false}}
    googleAnalytics: {{enabled: true, utmCampaign: spring}}
    subscription: {{enabled: true, url: {URL}, onDelete: keep}}
  - username: carol
    region: eu
    click: {{enabled: true}}
    open: {{enabled: true, onDelete: disable}}
""",
    )
    project.up()
    assert live(project, "global", "alice", "open")["enabled"] is False
    assert live(project, "global", "alice", "google_analytics")["utm_campaign"] == "spring"
    requests(project)

    write_fleet(
        project,
        """
subusers:
  - username: alice
    click: {enabled: true}
  - username: carol
    region: eu
    click: {enabled: true}
""",
    )
    assert planned(project) == {
        ("delete", "OpenTracking", "global/alice"),
        ("delete", "GoogleAnalytics", "global/alice"),
        ("delete", "SubscriptionTracking", "global/alice"),
        ("delete", "OpenTracking", "eu/carol"),
        ("update", "Originals", "originals"),  # the ledger drops their entries (sending nothing)
    }
    project.up()
    # Each give-back but `keep` reads the setting, then one PATCH of what differs from its target.
    assert sorted(requests(project), key=str) == sorted(
        [
            ("eu", "GET", "open", "carol", None),
            ("eu", "PATCH", "open", "carol", {"enabled": False}),  # disable
            ("global", "GET", "google_analytics", "alice", None),
            ("global", "PATCH", "google_analytics", "alice", {"enabled": False, "utm_campaign": "before"}),  # restore
            ("global", "GET", "open", "alice", None),
            ("global", "PATCH", "open", "alice", {"enabled": True}),  # restore (the default onDelete)
        ],
        key=str,
    )  # subscription: keep, no request
    assert live(project, "global", "alice", "subscription")["url"] == URL
    assert live(project, "global", "alice", "click")["enabled"] is True
    assert set(state(project)) == {"subuser-alice", "subuser-carol", "originals"}
    entries = state(project)["originals"][1]["entries"]
    active = {k for k, e in entries.items() if not json.loads(e).get("released")}
    assert active == {"click/global/alice", "click/eu/carol"}
    in_step(project)
