"""SendGrid's own account names through the real engine: a customer account ID in SendGrid's form and a
username that is an email address are declared in a fleet, deployed, left in step and given back."""

from __future__ import annotations

from .conftest import PulumiProject
from .test_ownership import patches

CUSTOMER_ID = "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"  # tsg_account_provisioning_v3.yaml's example
EMAIL_USERNAME = "John@example.com"  # tsg_subusers_v3.yaml's example


def test_a_sendgrid_form_account_id_and_an_email_username_deploy_and_destroy(project: PulumiProject) -> None:
    state = project.emulator.state
    state.add_customer("global", CUSTOMER_ID, enabled=True)
    state.add_subuser("global", EMAIL_USERNAME, enabled=True)
    project.set_fleet(
        subusers=[{"accountId": CUSTOMER_ID, "enabled": False}, {"username": EMAIL_USERNAME, "enabled": False}]
    )
    project.up()
    world = state.snapshot()["global"]
    assert world["customers"][CUSTOMER_ID]["click"]["enabled"] is False
    assert world["subusers"][EMAIL_USERNAME]["click"]["enabled"] is False
    assert sorted(patches(project), key=str) == [
        (EMAIL_USERNAME, {"enabled": False}),
        (f"account-id {CUSTOMER_ID}", {"enabled": False}),
    ]
    assert {name: outs["on_behalf_of"] for name, outs in project.resources().items()} == {
        f"account-{CUSTOMER_ID}": f"account-id {CUSTOMER_ID}",
        f"subuser-{EMAIL_USERNAME}": EMAIL_USERNAME,
    }
    project.run("preview", "--expect-no-changes")
    project.run("destroy", "--yes", "--skip-preview")
    world = state.snapshot()["global"]
    assert world["customers"][CUSTOMER_ID]["click"]["enabled"] is True  # restored
    assert world["subusers"][EMAIL_USERNAME]["click"]["enabled"] is True
