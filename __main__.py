"""The Pulumi program: click tracking for the parent account and any number of subusers.

Reads the fleet from stack config (`sendgrid-click-tracking:parent` / `:subusers`) or from the
YAML file named by `sendgrid-click-tracking:fleetFile`, declares one ClickTracking per account,
and exports what SendGrid answered.
"""

from pathlib import Path

import pulumi
import yaml
from pulumi_sendgrid_tracking import ClickTracking
from pulumi_sendgrid_tracking.fleet import FleetConfigError, parse_fleet

if pulumi.Config("sendgrid").get_secret("apiKey") is not None:
    pulumi.log.warn(
        "sendgrid:apiKey is set in stack config. Pulumi records a dynamic provider's stack config, encrypted, "
        "in the state (`pulumi stack export --show-secrets` shows it), and refresh/destroy use that recorded "
        "key unless PULUMI_RUN_PROGRAM=true. To keep the key out of the state, set SENDGRID_API_KEY instead."
    )

config = pulumi.Config()
fleet_file = config.get("fleetFile")
inline = {key: value for key in ("parent", "subusers") if (value := config.get_object(key)) is not None}
if fleet_file and inline:
    raise pulumi.RunError("set either sendgrid-click-tracking:fleetFile or parent/subusers in stack config, not both")
if fleet_file:
    try:
        desired = yaml.safe_load(Path(fleet_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise pulumi.RunError(f"sendgrid-click-tracking:fleetFile: cannot read {fleet_file}: {exc}") from None
else:
    desired = inline

try:
    entries = parse_fleet(desired)
except FleetConfigError as exc:
    raise pulumi.RunError(str(exc)) from None

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
