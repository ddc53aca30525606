"""A dynamic provider that does no HTTP: the engine's own floor, for comparison with ClickTracking."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult


class NullProvider(ResourceProvider):
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult({k: v for k, v in news.items() if k != "__provider"}, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("enabled") != news.get("enabled"), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"null/{props.get('on_behalf_of')}", {"enabled": props.get("enabled")})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({"enabled": news.get("enabled")})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class NullResource(Resource, module="bench", name="Null"):
    enabled: pulumi.Output[bool]

    def __init__(self, name: str, enabled: bool, on_behalf_of: str) -> None:
        super().__init__(NullProvider(), name, {"enabled": enabled, "on_behalf_of": on_behalf_of}, None)


PROGRAM = """
import pulumi
from null_provider import NullResource

for entry in pulumi.Config().get_object("subusers") or []:
    NullResource(f"subuser-{entry['username']}", entry["enabled"], entry["username"])
"""

PACKAGE_PROGRAM = """
import pulumi
from pulumi_sendgrid_tracking import ClickTracking

for entry in pulumi.Config().get_object("subusers") or []:
    ClickTracking(f"subuser-{entry['username']}", enabled=entry["enabled"], on_behalf_of=entry["username"])
"""
"""PROGRAM's shape with this package's ClickTracking: the null provider's like-for-like (the main job also
parses a fleet file and exports `clickTracking` and `trackingSettings`, which this program does not)."""
