"""A program of your own: SendGrid tracking settings next to whatever else the stack manages.

Configure the key and the accounts, then `pulumi up`:

    export SENDGRID_API_KEY=SG....                      # or: pulumi config set --secret sendgrid:apiKey SG....
    pulumi config set subuser alice                      # the subuser whose settings this stack manages
    pulumi config set unsubscribeUrl https://example.com/unsubscribe
"""

import pulumi
from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking

config = pulumi.Config()
subuser = config.require("subuser")

# The parent account: privacy review says no click or open tracking.
ClickTracking("parent-clicks", enabled=False)
OpenTracking("parent-opens", enabled=False, on_delete="keep")

# A subuser: the unsubscribe footer goes to our own page, and campaigns are attributed.
footer = SubscriptionTracking(
    "footer",
    enabled=True,
    url=config.require("unsubscribeUrl"),
    plain_content="Unsubscribe: <% %>",
    on_behalf_of=subuser,
)
analytics = GoogleAnalytics(
    "analytics",
    enabled=True,
    utm_source="sendgrid",
    utm_medium="email",
    utm_campaign=config.get("campaign") or "newsletter",
    on_behalf_of=subuser,
)

pulumi.export("footerUrl", footer.url)
pulumi.export("utmCampaign", analytics.utm_campaign)
pulumi.export("originalFooterEnabled", footer.original_enabled)
