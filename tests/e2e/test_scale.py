"""Big programs through the real engine: 2,500 account settings registered by one program, previewed.

The SDK's `serialize_provider` wraps pickle's `_batch_setitems` once more on every dynamic resource
it registers and never unwraps it, so after about a thousand registrations every pickle of a dict
recurses too deep: RecursionError (compare pulumi/pulumi#17803). This package's providers pickle
no dict, so its own resources would get through; the next dynamic resource of any other provider
in the same program (a user's own, whose pickle holds its attributes) would not. `resources._register`
undoes the wrapping after each registration; this test fails without it.

1,100 accounts with one setting each: 1,100 setting resources (one per account setting since 0.3.0,
no adoption records) and the stack's originals ledger, past the limit of about 965. Every setting waits for
the ledger, declared after the program's top level, so the first preview of a big new stack registers them
in one burst, and its time grows faster than linearly (docs/behaviour.md, Limits): 1,100 is what fits here.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tools.pulumi_project import PROJECT

from .conftest import PulumiProject

ACCOUNTS = 1_100

USERS_OWN_RESOURCE = """

# A user's own dynamic resource beside ours: its provider's pickle holds a dict (its attributes).
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class LabelProvider(ResourceProvider):
    def __init__(self) -> None:
        self.labels = {"team": "mail", "tier": "prod"}

    def create(self, props):
        return CreateResult("labels", props)


class Labels(Resource):
    def __init__(self, name: str) -> None:
        super().__init__(LabelProvider(), name, {})


Labels("labels")
"""


@pytest.mark.long
def test_a_program_of_1100_accounts_previews_without_requests(project: PulumiProject) -> None:
    fleet = {"subusers": [{"username": f"user-{i:05d}", "click": {"enabled": i % 2 == 0}} for i in range(ACCOUNTS)]}
    (project.dir / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    (project.dir / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {f"{PROJECT}:fleetFile": "fleet.yaml"}}))
    with (project.dir / "__main__.py").open("a") as program:
        program.write(USERS_OWN_RESOURCE)
    project.api_log()

    result = project.run("preview", "--json", check=False)

    assert "RecursionError" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    # Every account's setting (named by its account), the stack's ledger, the user's own resource, the stack.
    assert data["changeSummary"] == {"create": ACCOUNTS + 3}
    creates = {s["urn"].rsplit("::", 1)[1] for s in data["steps"] if s["op"] == "create"}
    assert {"global/user-00000", "global/user-01099", "originals", "labels"} <= creates
    assert project.api_log() == []  # a preview sends no request, however big
