"""The provider classes that users' stack state names. Never move, rename or remove them.

Pulumi pickles a dynamic resource's provider into the state (the `__provider` input and output)
by reference: module path plus class name, here `pulumi_sendgrid_tracking.providers.ClickTrackingProvider`.
`pulumi refresh` and `pulumi destroy` do not run the program: they unpickle that reference from
the state and call it. If the class moved, every existing stack would fail to refresh or destroy
(`ModuleNotFoundError` or `AttributeError` while unpickling). So the classes live here, in a
module whose only job is to keep these names; the logic they inherit may move freely.
`tests/compat/` pins this: a provider serialized by an earlier release must still load.
"""

from __future__ import annotations

from .click_tracking import ClickTrackingLogic


# Pinned: recorded in users' state as pulumi_sendgrid_tracking.providers.ClickTrackingProvider.
class ClickTrackingProvider(ClickTrackingLogic):
    """Manages the click tracking singleton of one account (parent or subuser) in one region."""


__all__ = ["ClickTrackingProvider"]
