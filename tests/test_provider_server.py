"""The real provider server (`python -u -m pulumi.dynamic`) driven over gRPC, as the engine drives it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pulumi_sendgrid_tracking import OriginalsProvider
from pulumi_sendgrid_tracking.emulator import Emulator
from pulumi_sendgrid_tracking.resources import _CLICK_PROVIDER

from .conftest import PROJECT, TEST_KEY
from .test_singleton import CASES

PICKLED = serialize_provider(_CLICK_PROVIDER)
LEDGER = serialize_provider(OriginalsProvider())
HELD_ENABLED = '{"originals":{"enabled":true}}'
"""A ledger entry holding enabled's original."""


def struct(props: dict[str, Any]) -> Any:
    return asyncio.run(rpc.serialize_properties(props, {}))


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: without_none(v) if isinstance(v, dict) else v for k, v in values.items() if v is not None}


def plain(message: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(message))


def urn(name: str, resource: str = "ClickTracking") -> str:
    return f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:{resource}::{name}"


@contextmanager
def serve(tmp_path: Path) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """The provider server in a process of its own: one per engine run, as the engine starts it."""
    # Outside the clone and without PYTHONPATH: the provider comes from the installed package.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.dynamic"],
        cwd=tmp_path,
        env={**env, "PULUMI_PROJECT": PROJECT},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        channel.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    with serve(tmp_path) as stub:
        yield stub


def configure(stub: Any, emulator: Emulator, key: str = TEST_KEY) -> None:
    stub.Configure(
        provider_pb2.ConfigureRequest(
            args=struct(
                {
                    "sendgrid:apiKey": key,
                    "sendgrid:baseUrl": emulator.base_url,
                    "sendgrid:euBaseUrl": emulator.eu_base_url,
                }
            )
        )
    )


@pytest.mark.parametrize("name", list(CASES))
def test_full_lifecycle_over_grpc(server: Any, emulator: Emulator, name: str, tmp_path: Path) -> None:
    case = CASES[name]
    setting = case.setting
    emulator.state.add_subuser("global", "alice")
    emulator.state.set_out_of_band("global", "alice", setting.name, case.answer())
    configure(server, emulator)

    # The stack's ledger: checked, then created with one GET of the account, sent nothing else.
    key = f"{setting.name}/global/alice"
    managed = [f.name for f in setting.writable if f.name in case.desired]
    accounts = {key: managed}  # the key names the account
    ledger_news = {"accounts": accounts, "entries": None, "__provider": LEDGER}
    checked = server.Check(
        provider_pb2.CheckRequest(urn=urn("originals", "Originals"), olds=struct({}), news=struct(ledger_news))
    )
    assert list(checked.failures) == []
    ledger = server.Create(provider_pb2.CreateRequest(urn=urn("originals", "Originals"), properties=checked.inputs))
    entries = plain(ledger.properties)["entries"]
    assert ledger.id == "originals"
    assert entries == {key: case.entry()}  # JSON text: its nulls are kept

    pickled = serialize_provider(case.provider())
    news = {
        **case.desired,
        **dict.fromkeys(case.provider.output_only_keys()),
        "on_behalf_of": "alice",
        "region": None,
        "on_delete": None,
        "name": "x",
        "ledger": entries[key],
        "__provider": pickled,
    }
    setting_urn = urn("global/alice", setting.resource)
    check = server.Check(provider_pb2.CheckRequest(urn=setting_urn, olds=struct({}), news=struct(news)))
    assert list(check.failures) == []
    inputs = plain(check.inputs)
    assert inputs == {**case.inputs(on_behalf_of="alice", ledger=entries[key]), "__provider": pickled}

    created = server.Create(provider_pb2.CreateRequest(urn=setting_urn, properties=struct(inputs)))
    assert created.id == "global/alice"
    outs = plain(created.properties)
    expected = case.outputs(live={**case.live, **case.desired}, on_behalf_of="alice")
    assert outs == without_none({**expected, "__provider": pickled})

    drifted = {"enabled": not case.desired["enabled"]}
    emulator.state.set_out_of_band("global", "alice", setting.name, drifted)
    read = server.Read(provider_pb2.ReadRequest(id=created.id, urn=urn("a"), properties=struct(outs)))
    assert plain(read.properties)["enabled"] is drifted["enabled"]
    assert plain(read.inputs)["enabled"] is drifted["enabled"]
    outs = plain(read.properties)

    updated = server.Update(
        provider_pb2.UpdateRequest(id=created.id, urn=urn("a"), olds=struct(outs), news=struct(inputs))
    )
    assert plain(updated.properties)["enabled"] is case.desired["enabled"]

    # `pulumi destroy` is another run, with a provider process of its own: the setting reads its account and
    # puts its own originals back; the ledger (deleted after it) sends nothing.
    with serve(tmp_path) as destroy:
        configure(destroy, emulator)
        destroy.Delete(provider_pb2.DeleteRequest(id=created.id, urn=setting_urn, properties=updated.properties))
        sent = len(emulator.state.request_log())
        destroy.Delete(
            provider_pb2.DeleteRequest(id=ledger.id, urn=urn("originals", "Originals"), properties=ledger.properties)
        )
        assert len(emulator.state.request_log()) == sent
    live = emulator.state.snapshot()["global"]["subusers"]["alice"][setting.name]
    assert {k: "" if live.get(k) is None else live[k] for k in case.desired} == case.originals()  # "" clears url

    # Diff is local.
    def diff(news: dict[str, Any]) -> Any:
        return server.Diff(provider_pb2.DiffRequest(id=created.id, urn=urn("a"), olds=struct(outs), news=struct(news)))

    outs = plain(updated.properties)
    assert diff(inputs).changes == provider_pb2.DiffResponse.DIFF_NONE
    flipped = diff({**inputs, "enabled": not case.desired["enabled"]})
    assert (flipped.changes, list(flipped.replaces)) == (provider_pb2.DiffResponse.DIFF_SOME, [])
    moved = diff({**inputs, "on_behalf_of": "bob"})
    assert list(moved.replaces) == ["on_behalf_of"] and moved.deleteBeforeReplace  # the old account goes first

    log = [(e["method"], e["on_behalf_of"], e["body"]) for e in emulator.state.request_log()]
    restore = case.restore_body()
    assert log == [
        ("GET", "alice", None),  # the ledger reads once
        ("PATCH", "alice", case.differing()),  # create sets the differing managed fields, with no second GET
        ("GET", "alice", None),  # read (refresh)
        ("PATCH", "alice", {"enabled": case.desired["enabled"]}),  # update puts back what drifted
        ("GET", "alice", None),  # delete reads the account (another process: nothing is known of it)
        ("PATCH", "alice", restore),  # and restores the managed fields
    ]


def test_check_failure_travels_over_grpc(server: Any, emulator: Emulator) -> None:
    configure(server, emulator)
    news = {"enabled": "false", "on_behalf_of": "a\nb", "__provider": PICKLED}
    check = server.Check(provider_pb2.CheckRequest(urn=urn("bad"), olds=struct({}), news=struct(news)))
    assert {(f.property, f.reason.split(";")[0]) for f in check.failures} == {
        ("enabled", "enabled must be a boolean, got the string 'false'"),
        (
            "on_behalf_of",
            "on_behalf_of 'a\\nb' has '\\n' (U+000A, a control character) at position 2: a subuser's username is "
            "printable ASCII without whitespace (an email address is fine)",
        ),
    }


def test_errors_reach_the_engine_without_the_key(server: Any, emulator: Emulator) -> None:
    configure(server, emulator, key="SG.wrong-test-key")
    props = {
        "enabled": True,
        "on_behalf_of": None,
        "region": "global",
        "on_delete": "restore",
        "ledger": HELD_ENABLED,
        "__provider": PICKLED,
    }
    with pytest.raises(grpc.RpcError) as info:
        server.Create(provider_pb2.CreateRequest(urn=urn("p"), properties=struct(props)))
    details = info.value.details()
    assert "GET /v3/tracking_settings/click failed (401): The provided authorization grant is invalid" in details
    assert "wrong-test-key" not in details


def test_four_handler_threads_on_one_instance(server: Any, emulator: Emulator) -> None:
    names = [f"user{i:02}" for i in range(24)]
    for name in names:
        emulator.state.add_subuser("global", name, enabled=True)
    emulator.state.configure(latency=0.02)
    configure(server, emulator)

    def create(name: str) -> str:
        props = {
            "enabled": False,
            "on_behalf_of": name,
            "region": "global",
            "on_delete": "restore",
            "ledger": HELD_ENABLED,
            "__provider": PICKLED,
        }
        return str(server.Create(provider_pb2.CreateRequest(urn=urn(name), properties=struct(props))).id)

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, names))
    assert ids == [f"global/{n}" for n in names]
    subs = emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)
    assert len(emulator.state.request_log()) == 2 * len(names)
