"""The program of the compatibility fixtures: every resource type, the parent, a subuser, an EU subuser.

Frozen: a fixture saved by an earlier release must preview with no changes under this program.
"""

from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking

ClickTracking("parent", enabled=False)
OpenTracking("parent-open", enabled=False, on_delete="disable")
SubscriptionTracking("parent-subscription", enabled=True, replace="[unsubscribe-here]", on_delete="keep")
ClickTracking("subuser-alice", enabled=False, on_behalf_of="alice")
GoogleAnalytics("subuser-alice-google-analytics", enabled=True, utm_campaign="spring", on_behalf_of="alice")
SubscriptionTracking(
    "subuser-carol-subscription",
    enabled=True,
    url="https://example.com/unsubscribe",
    plain_content="Unsubscribe: <% %>",
    on_behalf_of="carol",
    region="eu",
)
