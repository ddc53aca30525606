"""The Pulumi resources a program declares: typed arguments, documented outputs.

Each setting resource is registered under its account's name (`global/alice`), whatever the program calls
it, and depends on the stack's originals ledger (`Originals`, one per stack), which this module declares
once the program has declared every setting; see `singleton.py` and docs/behaviour.md, "Originals".
"""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import sys
import traceback
import weakref
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, TypeVar

import pulumi
from pulumi.dynamic import Resource, ResourceProvider
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings as sdk_settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import get_monitor, get_root_resource

from . import config as config_mod
from .errors import ConfigurationError
from .inputs import (
    DEFAULT_ON_DELETE,
    describe_account,
    on_behalf_of_problem,
    region_problem,
    resource_id,
    setting_key,
)
from .providers import (
    ClickTrackingProvider,
    GoogleAnalyticsProvider,
    OpenTrackingProvider,
    OriginalsProvider,
    SubscriptionTrackingProvider,
)
from .singleton import GIVEN_KEY, LEDGER_KEY, NAME_KEY, SettingProvider
from .stack_config import check_running_program

__all__ = ["ClickTracking", "GoogleAnalytics", "OpenTracking", "Originals", "SubscriptionTracking"]

_ORIGINALS_PROVIDER = OriginalsProvider()
_CLICK_PROVIDER = ClickTrackingProvider()
_OPEN_PROVIDER = OpenTrackingProvider()
_SUBSCRIPTION_PROVIDER = SubscriptionTrackingProvider()
_GOOGLE_ANALYTICS_PROVIDER = GoogleAnalyticsProvider()

LEDGER_NAME = "originals"
"""The ledger's resource name: one per stack."""
_ACCOUNT_NAME = re.compile(r"^(global|eu)(/.*)?$")

T = TypeVar("T")


class Originals(Resource, module="sendgrid", name="Originals"):
    """The stack's originals ledger: what each account setting held before this stack took each field over.

    Declared by this package, once per stack, after the program has declared its settings; a program does
    not declare it itself. Every setting resource depends on it, so the engine saves it (after reading the
    accounts and fields newly taken over) before any setting changes anything.
    """

    # Typed loosely: the SDK checks outputs against these annotations, and a ledger an earlier 0.3.0 wrote
    # keeps mappings in both (its outputs' `accounts` too) until its next change (tests/test_mocks.py).
    accounts: pulumi.Output[dict[str, Any]]
    """Setting key (`click/global/alice`, which names the account) → the fields the program manages."""
    entries: pulumi.Output[dict[str, Any]]
    """Setting key → JSON text: `originals` (field → value SendGrid held before), and `error` where it could not
    be read."""

    def __init__(
        self, resource_name: str, *, accounts: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {"accounts": accounts, "stack": pulumi.get_stack(), "entries": None}
        _register(self, _ORIGINALS_PROVIDER, resource_name, props, opts)


def _register(
    resource: Resource,
    provider: ResourceProvider,
    name: str,
    props: dict[str, Any],
    opts: pulumi.ResourceOptions | None,
) -> None:
    """`Resource.__init__`, undoing what the SDK's `serialize_provider` leaves behind, with a one-frame stack trace.

    Each call wraps `pickle._Pickler._batch_setitems` once more and never unwraps it, so every
    dynamic resource adds a stack frame to every later pickle, and a program with about a thousand
    of them fails with RecursionError (compare pulumi/pulumi#17803). Restoring both methods after
    each registration keeps the depth at one.

    The SDK records the whole Python stack with every resource (`stackTrace`: this package's frames, the
    program's, asyncio's and the language host's, about 1.7 kB per setting), and the engine writes it into
    every checkpoint: the state's size is what each step of `up` and `destroy` pays for. Only the program's
    line is recorded instead (`_program_line`): the `sourcePosition` then names the user's line, not ours.
    """
    pickler: Any = pickle._Pickler
    saved = (pickler._batch_setitems, pickler.save_dict)
    sdk_trace = getattr(sdk_resource, "_get_stack_trace", None)
    if sdk_trace is not None:
        sdk_resource._get_stack_trace = _program_line
    try:
        Resource.__init__(resource, provider, name, props, opts)
    finally:
        pickler._batch_setitems, pickler.save_dict = saved
        if sdk_trace is not None:
            sdk_resource._get_stack_trace = sdk_trace


_NOT_THE_PROGRAM = (os.path.dirname(__file__), os.path.dirname(pulumi.__file__), os.path.dirname(asyncio.__file__))
"""Frames of this package, of the Pulumi SDK and of asyncio: not the line of the program that declared a resource."""


def _program_line() -> source_pb2.StackTrace:
    """The stack trace recorded for a resource of this package: the innermost frame of the program (none when
    the package declared the resource itself, as the ledger)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_NOT_THE_PROGRAM):
        frame = frame.f_back
    if frame is None or not frame.f_code.co_filename.endswith(".py"):
        return source_pb2.StackTrace()
    line = traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, lookup_line=False)
    return source_pb2.StackTrace(frames=[source_pb2.StackFrame(pc=sdk_resource._get_source_position_for_frame(line))])


class _ProgramRun:
    """The account settings one run of the program declares, and the ledger declared once they are known.

    The ledger must be registered before any setting (they depend on it) yet list them all: its entries
    are an Output that settings take as an input now and that resolves once the program's top level has
    finished (the root stack registered its outputs) and the ledger is declared with every account.
    """

    def __init__(self) -> None:
        self.accounts: dict[str, list[str]] = {}
        self.owners: dict[str, str] = {}
        self.closed = False
        self._loop = asyncio.get_event_loop()
        self._ready: asyncio.Future[pulumi.Output[Any]] = self._loop.create_future()
        self.entries: pulumi.Output[Any] = pulumi.Output(
            self._from_ledger(lambda out: out.resources()),
            self._from_ledger(lambda out: out.future(with_unknowns=True)),
            self._from_ledger(lambda out: out.is_known()),
            self._from_ledger(lambda out: out.is_secret()),
        )
        self._loop.call_soon(self._poll)
        _wait_for_registrations_in_turn(self._loop)

    async def _from_ledger(self, part: Callable[[pulumi.Output[Any]], Awaitable[T]]) -> T:
        return await part(await self._ready)

    def _poll(self) -> None:
        root = get_root_resource()
        # Under mocks (no root stack) or an SDK without the flag, the first turn of the loop is the end.
        if root is not None and not getattr(root, "_outputs_registered", True):
            self._loop.call_later(0.005, self._poll)
            return
        self.closed = True
        try:
            ledger = Originals(LEDGER_NAME, accounts=dict(sorted(self.accounts.items())))
        except Exception as exc:  # the program's error, not ours to swallow
            self._ready.set_exception(exc)
            raise
        self._ready.set_result(ledger.entries)


def _wait_for_registrations_in_turn(loop: asyncio.AbstractEventLoop) -> None:
    """Have the SDK wait for the program's registrations one at a time, not by scanning every output per reply.

    At the end of a program the SDK's `wait_for_rpcs` awaits its list of outstanding RPCs in turn, then
    the outputs still pending, with `asyncio.wait(FIRST_COMPLETED)` in a loop that re-registers a callback
    on every pending output each time one finishes. Registrations join that list only once the event loop
    turns, after the top level has returned: the SDK finds it empty and waits for the whole run in the
    second loop, at a cost of (outputs pending) x (replies), quadratic in the number of resources (a
    setting has about 18 outputs, all pending until the ledger is declared and the engine answers). One
    finished entry in the list makes the SDK take the first path: it yields, the registrations join the
    list, and it awaits them one by one. Without that internal list (another SDK), nothing changes but time.
    """
    get_manager = getattr(sdk_settings, "_get_rpc_manager", None)
    rpcs = getattr(get_manager(), "rpcs", None) if get_manager is not None else None
    if not isinstance(rpcs, list):  # pragma: no cover - an SDK without the list
        return
    finished: asyncio.Future[None] = loop.create_future()
    finished.set_result(None)
    rpcs.append(finished)


_RUNS: weakref.WeakKeyDictionary[Any, _ProgramRun] = weakref.WeakKeyDictionary()
"""The run of each program (by its root stack resource: the Automation API may run several in a process)."""
_RUN_WITHOUT_ROOT: list[_ProgramRun] = []


def _under_mocks() -> bool:
    """Whether the program runs under `pulumi.runtime.set_mocks` (a user's unit tests), not an engine."""
    monitor = get_monitor()
    return type(monitor).__name__ == "MockMonitor"


def _program_run() -> _ProgramRun:
    """This run's bookkeeping (a process may run several programs: the Automation API, tests).

    Under mocks, each test declares its resources after the previous test's ledger was declared: a closed
    run is then followed by a new one (the mock monitor keeps no state to conflict with).
    """
    root = get_root_resource()
    run = _RUN_WITHOUT_ROOT[-1] if root is None and _RUN_WITHOUT_ROOT else None if root is None else _RUNS.get(root)
    if run is None or (run.closed and _under_mocks()):
        run = _ProgramRun()
        if root is None:
            _RUN_WITHOUT_ROOT[:] = [run]
        else:
            _RUNS[root] = run
    return run


def stack_region() -> str:
    """The region of a resource that names none: the stack's sendgrid:region (or SENDGRID_REGION), else global.

    An invalid value is kept as it is: the resource's check reports it at preview.
    """
    try:
        return config_mod.resolve_region({"sendgrid:region": pulumi.Config("sendgrid").get("region")}, os.environ)
    except ConfigurationError:
        return pulumi.Config("sendgrid").get("region") or os.environ.get("SENDGRID_REGION") or "global"


def _plain(value: Any, argument: str, resource_name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise pulumi.RunError(
        f"{resource_name}: {argument} must be a plain string (or None) when the program runs, got "
        f"{type(value).__name__}: it names the resource (one per account) and lets the program refuse two "
        "resources for one account. Resolve it before declaring the resource."
    )


def _options(resource_name: str, engine_name: str, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """The user's options, as the engine gets them for a resource named by its account.

    - an alias from the program's name, so a 0.1.0/0.2.0 resource (named by the program) is this one;
    - `delete_before_replace`: a replacement gives the old account back before the new one is taken over
      (create-first, the old one's give-back would undo the new one's values);
    - registered at the stack's root: a `parent` in the URN would make moving it between components a
      create and a delete of the same account; the parent's `protect` is inherited as Pulumi does.
    """
    opts = opts or pulumi.ResourceOptions()
    if opts.delete_before_replace is False:
        raise pulumi.RunError(
            f"{resource_name}: delete_before_replace=False cannot be honoured: a tracking setting is one per "
            "account, so a create-first replacement would be undone by the old resource's give-back. Leave it out."
        )
    protect = opts.protect
    if opts.parent is not None and protect is None:
        protect = getattr(opts.parent, "_protect", None)
    aliases = list(opts.aliases or [])
    if resource_name != engine_name:
        aliases.append(pulumi.Alias(name=resource_name, parent=opts.parent or pulumi.ROOT_STACK_RESOURCE))
    merged = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions())  # a copy
    merged.parent = None
    merged.aliases = aliases
    merged.delete_before_replace = True
    merged.protect = protect
    return merged


def _declare(
    resource: Resource,
    provider: SettingProvider,
    resource_name: str,
    props: dict[str, Any],
    opts: pulumi.ResourceOptions | None,
) -> None:
    """Check the stack config and that the account has one owner; register the setting under its account."""
    if problems := check_running_program():
        raise pulumi.RunError(
            f"invalid stack config (Pulumi.{pulumi.get_stack()}.yaml):\n  - " + "\n  - ".join(problems)
        )
    setting = provider.setting
    on_behalf_of = _plain(props.get("on_behalf_of"), "on_behalf_of", resource_name)
    region = _plain(props.get("region"), "region", resource_name)
    if region is None:
        region = stack_region()
    for key_ in provider.output_only_keys():
        props.setdefault(key_, None)
    props[NAME_KEY] = resource_name
    if on_behalf_of_problem(on_behalf_of) or region_problem(region):
        # An account that cannot exist: the setting's check reports the input at preview.
        _register(resource, provider, resource_name, props, opts)
        return
    engine_name = resource_id(region, on_behalf_of)
    if resource_name != engine_name and _ACCOUNT_NAME.match(resource_name):
        raise pulumi.RunError(
            f"{setting.resource} {resource_name!r} (of {describe_account(on_behalf_of, region)}) is named like "
            "another account's resource: names of the form `global/...` or `eu/...` are how this package names "
            "resources by account. Choose another name."
        )
    run = _program_run()
    if run.closed:
        raise pulumi.RunError(
            f"{setting.resource} {resource_name!r} was declared after the program's top level had finished "
            "(inside an apply, a callback or after an await): the stack's originals ledger must know every "
            "account before any is changed. Declare tracking resources at the program's top level."
        )
    key = setting_key(setting.name, region, on_behalf_of)
    other = run.owners.get(key)
    if other is not None and other != resource_name:
        raise pulumi.RunError(
            f"{setting.resource} resources {other!r} and {resource_name!r} both manage {setting.title} of "
            f"{describe_account(on_behalf_of, region)}: one account's setting has one owner. Remove one of "
            "them (or give them different on_behalf_of/region values)."
        )
    run.owners[key] = resource_name
    managed = provider.managed(props)
    run.accounts[key] = managed
    given = [name for name in managed if isinstance(props.get(name), pulumi.Output)]
    if given:
        props[GIVEN_KEY] = given
    props[LEDGER_KEY] = run.entries.apply(lambda entries: (entries or {}).get(key))
    _register(resource, provider, engine_name, props, _options(resource_name, engine_name, opts))


class _TrackingSetting(Resource):
    """What every tracking setting resource outputs besides its own fields (each class adds those)."""

    on_behalf_of: pulumi.Output[str | None]
    """The subuser (or `account-id <id>`); None for the parent account."""
    region: pulumi.Output[str]
    """`global` or `eu`."""
    on_delete: pulumi.Output[str]
    """What destroy does: restore, keep or disable."""
    original_enabled: pulumi.Output[bool]
    """`enabled` when this stack took the setting over."""
    managed_fields: pulumi.Output[list[str]]
    """The fields this resource manages: `enabled` and those the program gives."""
    name: pulumi.Output[str]
    """The program's name for it (the engine names it by its account: `global/alice`, `eu`)."""
    originals: pulumi.Output[dict[str, Any]]
    """Field → what SendGrid held before this stack first took that field over: what destroy restores."""


class ClickTracking(_TrackingSetting, module="sendgrid", name="ClickTracking"):
    """Click tracking of the parent account, a subuser or a customer account, in one region."""

    enabled: pulumi.Output[bool]
    """Whether click tracking is on, as SendGrid last answered."""
    enable_text: pulumi.Output[bool]
    """Whether click tracking covers plain-text mail (read-only, from SendGrid)."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"enabled": enabled, "on_behalf_of": on_behalf_of, "region": region, "on_delete": on_delete}
        _declare(self, _CLICK_PROVIDER, resource_name, props, opts)


class OpenTracking(_TrackingSetting, module="sendgrid", name="OpenTracking"):
    """Open tracking (an invisible image that records opens) of one account, in one region."""

    enabled: pulumi.Output[bool]
    """Whether open tracking is on, as SendGrid last answered."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"enabled": enabled, "on_behalf_of": on_behalf_of, "region": region, "on_delete": on_delete}
        _declare(self, _OPEN_PROVIDER, resource_name, props, opts)


class SubscriptionTracking(_TrackingSetting, module="sendgrid", name="SubscriptionTracking"):
    """Subscription tracking (the unsubscribe footer and where an unsubscribe lands) of one account.

    Fields other than `enabled` are managed only when given: a field left out is never sent,
    compared or restored, and its live value is still an output.
    """

    enabled: pulumi.Output[bool]
    """Whether SendGrid adds the unsubscribe footer, as it last answered."""
    html_content: pulumi.Output[str | None]
    """The HTML footer, as SendGrid last answered."""
    plain_content: pulumi.Output[str | None]
    """The plain-text footer, as SendGrid last answered."""
    replace: pulumi.Output[str | None]
    """The tag that templates use to place the footer themselves, as SendGrid last answered."""
    url: pulumi.Output[str | None]
    """Where an unsubscribe sends the recipient (wins over `landing`), as SendGrid last answered."""
    landing: pulumi.Output[str | None]
    """The HTML page SendGrid shows after an unsubscribe, as SendGrid last answered."""
    original_html_content: pulumi.Output[str | None]
    """`html_content` when this resource started managing it (None if unmanaged)."""
    original_plain_content: pulumi.Output[str | None]
    """`plain_content` when this resource started managing it (None if unmanaged)."""
    original_replace: pulumi.Output[str | None]
    """`replace` when this resource started managing it (None if unmanaged)."""
    original_url: pulumi.Output[str | None]
    """`url` when this resource started managing it (None if unmanaged or absent)."""
    original_landing: pulumi.Output[str | None]
    """`landing` when this resource started managing it (None if unmanaged)."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        html_content: pulumi.Input[str] | None = None,
        plain_content: pulumi.Input[str] | None = None,
        replace: pulumi.Input[str] | None = None,
        url: pulumi.Input[str] | None = None,
        landing: pulumi.Input[str] | None = None,
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "enabled": enabled,
            "html_content": html_content,
            "plain_content": plain_content,
            "replace": replace,
            "url": url,
            "landing": landing,
            "on_behalf_of": on_behalf_of,
            "region": region,
            "on_delete": on_delete,
        }
        _declare(self, _SUBSCRIPTION_PROVIDER, resource_name, props, opts)


class GoogleAnalytics(_TrackingSetting, module="sendgrid", name="GoogleAnalytics"):
    """Google Analytics tracking (utm parameters added to links) of one account, in one region.

    Fields other than `enabled` are managed only when given: a field left out is never sent,
    compared or restored, and its live value is still an output.
    """

    enabled: pulumi.Output[bool]
    """Whether SendGrid adds utm parameters to links, as it last answered."""
    utm_source: pulumi.Output[str | None]
    """utm_source, as SendGrid last answered."""
    utm_medium: pulumi.Output[str | None]
    """utm_medium, as SendGrid last answered."""
    utm_term: pulumi.Output[str | None]
    """utm_term, as SendGrid last answered."""
    utm_content: pulumi.Output[str | None]
    """utm_content, as SendGrid last answered."""
    utm_campaign: pulumi.Output[str | None]
    """utm_campaign, as SendGrid last answered."""
    original_utm_source: pulumi.Output[str | None]
    """utm_source when this resource started managing it (None if unmanaged)."""
    original_utm_medium: pulumi.Output[str | None]
    """utm_medium when this resource started managing it (None if unmanaged)."""
    original_utm_term: pulumi.Output[str | None]
    """utm_term when this resource started managing it (None if unmanaged)."""
    original_utm_content: pulumi.Output[str | None]
    """utm_content when this resource started managing it (None if unmanaged)."""
    original_utm_campaign: pulumi.Output[str | None]
    """utm_campaign when this resource started managing it (None if unmanaged)."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        utm_source: pulumi.Input[str] | None = None,
        utm_medium: pulumi.Input[str] | None = None,
        utm_term: pulumi.Input[str] | None = None,
        utm_content: pulumi.Input[str] | None = None,
        utm_campaign: pulumi.Input[str] | None = None,
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "enabled": enabled,
            "utm_source": utm_source,
            "utm_medium": utm_medium,
            "utm_term": utm_term,
            "utm_content": utm_content,
            "utm_campaign": utm_campaign,
            "on_behalf_of": on_behalf_of,
            "region": region,
            "on_delete": on_delete,
        }
        _declare(self, _GOOGLE_ANALYTICS_PROVIDER, resource_name, props, opts)
