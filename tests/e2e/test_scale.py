"""Big programs through the real engine: 2,500 account settings registered by one program, previewed.

The SDK's `serialize_provider` wraps pickle's `_batch_setitems` once more on every dynamic resource
it registers and never unwraps it, so after about a thousand registrations every pickle of a dict
recurses too deep: RecursionError (compare pulumi/pulumi#17803). This package's providers pickle
no dict, so its own resources would get through; the next dynamic resource of any other provider
in the same program (a user's own, whose pickle holds its attributes) would not. `resources._register`
undoes the wrapping after each registration; this test fails without it.

2,500 accounts with one setting each: 2,500 setting resources (one per account setting since 0.3.0,
no adoption records) and the stack's originals ledger, two and a half times the limit. Previewed as the
pipeline scripts preview, with `PULUMI_SKIP_CHECKPOINTS=true`: the 3.277.0 engine serializes the whole
state after every step of a preview and then discards it, quadratic in the stack's size and slow under
load (docs/upstream-preview-checkpoints.md); that is the engine's, not what this test is about. It also
holds the SDK's end-of-program wait to one look per output (docs/upstream-python-wait-for-rpcs.md).
About 40 s here on 2 cores at load 2 to 5 (0.2.0 previewed 5,000 registrations in 55 to 90 s).
"""

from __future__ import annotations

import json

import pytest
import yaml

from tools.pulumi_project import PROJECT

from .conftest import PulumiProject

ACCOUNTS = 2_500

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

OUTPUTS_SCANNED = """

# How many pending outputs the SDK scans while it waits for the program's registrations (see resources.py,
# `_wait_for_registrations_in_turn`): each `asyncio.wait` call looks at every output it is given.
import asyncio
import atexit
from pathlib import Path

scanned = [0]
real_wait = asyncio.wait


async def counting_wait(fs, *args, **kwargs):
    fs = list(fs)
    scanned[0] += len(fs)
    return await real_wait(fs, *args, **kwargs)


asyncio.wait = counting_wait
atexit.register(lambda: (Path(__file__).parent / "outputs-scanned.txt").write_text(str(scanned[0])))
"""


@pytest.mark.long
def test_a_program_of_2500_accounts_previews_without_requests(project: PulumiProject) -> None:
    fleet = {"subusers": [{"username": f"user-{i:05d}", "click": {"enabled": i % 2 == 0}} for i in range(ACCOUNTS)]}
    (project.dir / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    (project.dir / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {f"{PROJECT}:fleetFile": "fleet.yaml"}}))
    with (project.dir / "__main__.py").open("a") as program:
        program.write(USERS_OWN_RESOURCE + OUTPUTS_SCANNED)
    project.api_log()
    project.env["PULUMI_SKIP_CHECKPOINTS"] = "true"

    result = project.run("preview", "--json", check=False)

    assert "RecursionError" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    # Every account's setting (named by its account), the stack's ledger, the user's own resource, the stack.
    assert data["changeSummary"] == {"create": ACCOUNTS + 3}
    creates = {s["urn"].rsplit("::", 1)[1] for s in data["steps"] if s["op"] == "create"}
    assert {"global/user-00000", "global/user-02499", "originals", "labels"} <= creates
    assert project.api_log() == []  # a preview sends no request, however big
    # The end of the program waits for the registrations one at a time: at most one look at each of the
    # settings' outputs (about 18 each), not one per engine reply (hundreds per setting at this size).
    assert int((project.dir / "outputs-scanned.txt").read_text()) <= 20 * ACCOUNTS
