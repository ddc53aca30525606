"""The Pulumi program: click tracking for the parent account and any number of subusers.

Reads the fleet from stack config (`sendgrid-click-tracking:parent` / `:subusers`) or from the
YAML file named by `sendgrid-click-tracking:fleetFile`, declares one ClickTracking per account,
and exports what SendGrid answered. Every mistake in the stack config (unknown keys, an API key in
plaintext, a fleet without accounts that does not say `manageNothing: true`, ...) fails
`pulumi preview` with one message that lists them all, before any resource is declared.
"""

from pathlib import Path

import pulumi
from pulumi_sendgrid_tracking import ClickTracking
from pulumi_sendgrid_tracking.fleet import PROGRAM_KEYS, FleetConfigError, fleet_from_stack_config
from pulumi_sendgrid_tracking.stack_config import check_running_program, current_stack_config, split_key

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
if errors:
    raise pulumi.RunError("\n".join(errors))

resources = {
    entry.name: ClickTracking(
        entry.name,
        enabled=entry.enabled,
        on_behalf_of=entry.on_behalf_of,
        region=entry.region,
        on_delete=entry.on_delete,
    )
    for entry in entries
}

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
        for name, resource in resources.items()
    },
)
