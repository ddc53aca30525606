"""The Pulumi program: tracking settings (click, open, subscription, Google Analytics) of a fleet of accounts.

Reads the fleet from stack config (`sendgrid-click-tracking:defaults` / `:parent` / `:subusers`) or from
the YAML file named by `sendgrid-click-tracking:fleetFile`, declares one resource per account and
setting (ClickTracking, OpenTracking, SubscriptionTracking, GoogleAnalytics), and exports what
SendGrid answered. Every mistake in the stack config (unknown keys, an API key in plaintext, a bad
field, a fleet without accounts that does not say `manageNothing: true`, ...) fails `pulumi preview`
with one message that lists them all, before any resource is declared.

With `sendgrid-click-tracking:shard: "<index>/<count>"`, the stack declares only the accounts of its
shard (every setting of each), chosen by a hash of the account; see shards.py and the README, "Big
fleets and sharding".
"""

from pathlib import Path
from typing import Any

import pulumi
from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking
from pulumi_sendgrid_tracking.fleet import PROGRAM_KEYS, SHARD, FleetConfigError, fleet_from_stack_config
from pulumi_sendgrid_tracking.resources import stack_region
from pulumi_sendgrid_tracking.shards import ShardConfigError, parse_shard
from pulumi_sendgrid_tracking.stack_config import check_running_program, current_stack_config, split_key

RESOURCE_CLASSES: dict[str, Any] = {
    "click": ClickTracking,
    "open": OpenTracking,
    "subscription": SubscriptionTracking,
    "google_analytics": GoogleAnalytics,
}

namespace, stack = pulumi.get_project(), pulumi.get_stack()
values, _ = current_stack_config()
errors = []
if problems := check_running_program({namespace: PROGRAM_KEYS}):
    errors.append(f"invalid stack config (Pulumi.{stack}.yaml):\n  - " + "\n  - ".join(problems))
own = {}
for key, value in values.items():
    key_namespace, name = split_key(key)
    if key_namespace == namespace:
        own[name] = value
try:
    entries = fleet_from_stack_config(own, lambda path: Path(path).read_text(encoding="utf-8"), namespace=namespace)
except FleetConfigError as exc:
    errors.append(str(exc))
shard = None
if SHARD in own:
    try:
        shard = parse_shard(own[SHARD], f"{namespace}:{SHARD}")
    except ShardConfigError as exc:
        errors.append(f"invalid stack config (Pulumi.{stack}.yaml): {exc}")
if errors:
    raise pulumi.RunError("\n".join(errors))
if shard is not None:
    # Only this shard's accounts, each with all its settings: the others belong to the other shards' stacks.
    region = stack_region()
    entries = [entry for entry in entries if shard.holds(entry.region or region, entry.on_behalf_of)]

resources = {entry.name: (entry, RESOURCE_CLASSES[entry.setting](entry.name, **entry.arguments())) for entry in entries}

if shard is not None:
    # Read by the cross-shard check (pipelines/shards check): which shard the state was deployed as.
    pulumi.export("shard", {"index": shard.index, "count": shard.count})

# Unchanged since the click-only releases: scripts read it.
pulumi.export(
    "clickTracking",
    {
        name: {
            "id": resource.id,
            "enabled": resource.enabled,
            "enable_text": resource.enable_text,
            "original_enabled": resource.original_enabled,
            "region": resource.region,
        }
        for name, (entry, resource) in resources.items()
        if entry.setting == "click"
    },
)
# Every resource, click tracking included: the account (the resource ID), the setting, each managed
# field as SendGrid last answered, and `enabled` as found when the stack took the setting over. The
# originals of optional fields stay in the state only: one SendGrid did not have (no `url` yet) is
# null, and a preview shows every null output as [unknown], so each preview would list a change.
pulumi.export(
    "trackingSettings",
    {
        name: {
            "account": resource.id,
            "setting": entry.setting,
            **{field: getattr(resource, field) for field in entry.values},
            "original_enabled": resource.original_enabled,
        }
        for name, (entry, resource) in resources.items()
    },
)
