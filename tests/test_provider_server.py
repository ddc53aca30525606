"""The real provider server (`python -u -m pulumi.dynamic`) driven over gRPC, as the engine drives it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pulumi_sendgrid_tracking.emulator import Emulator
from pulumi_sendgrid_tracking.resources import _CLICK_PROVIDER

from .conftest import PROJECT, TEST_KEY

TYPE = "pulumi-python:dynamic/sendgrid:ClickTracking"
PICKLED = serialize_provider(_CLICK_PROVIDER)


def struct(props: dict[str, Any]) -> Any:
    return asyncio.run(rpc.serialize_properties(props, {}))


def plain(message: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(message))


def urn(name: str) -> str:
    return f"urn:pulumi:dev::{PROJECT}::{TYPE}::{name}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
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


def test_full_lifecycle_over_grpc(server: Any, emulator: Emulator) -> None:
    emulator.state.add_subuser("global", "alice", enabled=True)
    configure(server, emulator)
    news = {
        "enabled": False,
        "on_behalf_of": "alice",
        "region": None,
        "on_delete": None,
        "enable_text": None,
        "original_enabled": None,
        "__provider": PICKLED,
    }

    check = server.Check(provider_pb2.CheckRequest(urn=urn("a"), olds=struct({}), news=struct(news)))
    assert list(check.failures) == []
    inputs = plain(check.inputs)
    assert inputs == {
        "enabled": False,
        "on_behalf_of": "alice",
        "region": "global",
        "on_delete": "restore",
        "__provider": PICKLED,
    }
    assert emulator.state.request_log() == []  # check sends nothing

    created = server.Create(provider_pb2.CreateRequest(urn=urn("a"), properties=struct(inputs)))
    assert created.id == "global/alice"
    outs = plain(created.properties)
    assert outs == {
        "enabled": False,
        "enable_text": False,
        "on_behalf_of": "alice",
        "region": "global",
        "on_delete": "restore",
        "original_enabled": True,
        "__provider": PICKLED,
    }

    same = server.Diff(provider_pb2.DiffRequest(id=created.id, urn=urn("a"), olds=struct(outs), news=struct(inputs)))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    flipped = {**inputs, "enabled": True}
    diff = server.Diff(provider_pb2.DiffRequest(id=created.id, urn=urn("a"), olds=struct(outs), news=struct(flipped)))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(diff.replaces) == []
    moved = {**inputs, "on_behalf_of": "bob"}
    diff = server.Diff(provider_pb2.DiffRequest(id=created.id, urn=urn("a"), olds=struct(outs), news=struct(moved)))
    assert list(diff.replaces) == ["on_behalf_of"] and diff.deleteBeforeReplace

    emulator.state.set_out_of_band("global", "alice", "click", {"enabled": True})  # drift
    read = server.Read(provider_pb2.ReadRequest(id=created.id, urn=urn("a"), properties=struct(outs)))
    assert plain(read.properties)["enabled"] is True
    assert plain(read.inputs)["enabled"] is True
    outs = plain(read.properties)

    updated = server.Update(
        provider_pb2.UpdateRequest(id=created.id, urn=urn("a"), olds=struct(outs), news=struct(inputs))
    )
    assert plain(updated.properties)["enabled"] is False

    server.Delete(provider_pb2.DeleteRequest(id=created.id, urn=urn("a"), properties=updated.properties))
    assert emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True  # restored

    log = [(e["method"], e["on_behalf_of"], e["body"]) for e in emulator.state.request_log()]
    assert log == [
        ("GET", "alice", None),  # create: adopt
        ("PATCH", "alice", {"enabled": False}),  # create: set
        ("GET", "alice", None),  # read (refresh)
        ("PATCH", "alice", {"enabled": False}),  # update
        ("PATCH", "alice", {"enabled": True}),  # delete: restore
    ]


def test_check_failure_travels_over_grpc(server: Any, emulator: Emulator) -> None:
    configure(server, emulator)
    news = {"enabled": "false", "on_behalf_of": "a\nb", "__provider": PICKLED}
    check = server.Check(provider_pb2.CheckRequest(urn=urn("bad"), olds=struct({}), news=struct(news)))
    assert {(f.property, f.reason.split(";")[0]) for f in check.failures} == {
        ("enabled", "enabled must be a boolean, got the string 'false'"),
        (
            "on_behalf_of",
            "on_behalf_of must not contain control characters such as newlines (they would inject HTTP headers)",
        ),
    }


def test_errors_reach_the_engine_without_the_key(server: Any, emulator: Emulator) -> None:
    configure(server, emulator, key="SG.wrong-test-key")
    props = {"enabled": True, "on_behalf_of": None, "region": "global", "on_delete": "restore", "__provider": PICKLED}
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
            "__provider": PICKLED,
        }
        return str(server.Create(provider_pb2.CreateRequest(urn=urn(name), properties=struct(props))).id)

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, names))
    assert ids == [f"global/{n}" for n in names]
    subs = emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)
    assert len(emulator.state.request_log()) == 2 * len(names)
