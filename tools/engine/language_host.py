"""A Python implementation of Pulumi's `pulumi-language-python` language host (LanguageRuntime gRPC).

Used only where Go cannot fetch the official host module (github.com/pulumi/pulumi/sdk/python/
cmd/pulumi-language-python/v3, which has no tags and may be missing from a module mirror).
It does what the official host does for `preview`/`up`/`refresh`/`destroy`: print its port,
and on Run spawn the official `pulumi-language-python-exec` (from the sdk/v3 module, same
release) with the project's virtualenv Python, passing the same flags and PULUMI_CONFIG env.
Code generation, packing and templates are not offered (UNIMPLEMENTED).

Lifetime: the engine starts this host in a process group of its own; the program runs as the host's
child in that group. On SIGINT or SIGTERM (the engine closing its plugins), or when the engine is
gone (killed, crashed: see plugin_guard.EngineWatch), the host stops the program's whole process
tree (SIGTERM, then SIGKILL after plugin_guard.STOP_GRACE_SECONDS) and exits at once, without waiting
for a gRPC handler thread that may still be blocked on the program.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2, json_format


def _load_protos() -> tuple[Any, Any, Any]:
    """language_pb2, language_pb2_grpc and plugin_pb2, without running `pulumi/__init__.py`.

    `from pulumi.runtime.proto import ...` first imports the whole SDK (automation API, runtime,
    every stub: about 0.3 s of CPU, paid by every `pulumi` command before the program starts), and
    this host needs three generated modules that import only protobuf, grpc and each other
    (relative imports). So `pulumi`, `pulumi.runtime` and `pulumi.runtime.proto` are stood in for by
    bare packages with the same search path while those three load, then removed again. If anything
    about that layout differs (another SDK release), the plain import is used.
    """
    import importlib  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415
    import types  # noqa: PLC0415

    names = ("pulumi", "pulumi.runtime", "pulumi.runtime.proto")
    spec = None if names[0] in sys.modules else importlib.util.find_spec(names[0])
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        for name, path in zip(names, (root, root / "runtime", root / "runtime" / "proto"), strict=True):
            stand_in = types.ModuleType(name)
            stand_in.__path__ = [str(path)]
            sys.modules[name] = stand_in
        try:
            return tuple(  # type: ignore[return-value]
                importlib.import_module(f"pulumi.runtime.proto.{m}")
                for m in ("language_pb2", "language_pb2_grpc", "plugin_pb2")
            )
        except ImportError:
            pass
        finally:
            for name in [m for m in sys.modules if m == "pulumi" or m.startswith("pulumi.")]:
                del sys.modules[name]
    from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2  # noqa: PLC0415

    return language_pb2, language_pb2_grpc, plugin_pb2


if TYPE_CHECKING:
    from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2
else:
    language_pb2, language_pb2_grpc, plugin_pb2 = _load_protos()

if TYPE_CHECKING:  # mypy sees the checkout; at run time both files sit side by side in the engine's bin
    from tools.engine.plugin_guard import EngineWatch, Wakeup, become_subreaper, stop_descendants
else:
    from plugin_guard import EngineWatch, Wakeup, become_subreaper, stop_descendants

HERE = Path(__file__).resolve().parent
EXEC_SCRIPT = HERE / "pulumi-language-python-exec"
VERSION = os.environ.get("PULUMI_ENGINE_VERSION", "3.260.0")
USER_ACTIONABLE_EXIT = 32  # the exec script already showed the user an error


def _python_for(info: Any) -> tuple[str, dict[str, str]]:
    """The interpreter for the program: the `virtualenv` runtime option, else PULUMI_PYTHON_CMD/python3."""
    env = dict(os.environ)
    options = json_format.MessageToDict(info.options) if info is not None and info.HasField("options") else {}
    venv = options.get("virtualenv")
    if venv:
        root = info.root_directory or os.getcwd()
        venv_path = Path(venv) if os.path.isabs(venv) else Path(root) / venv
        env["VIRTUAL_ENV"] = str(venv_path)
        env["PATH"] = f"{venv_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONHOME", None)
        return str(venv_path / "bin" / "python"), env
    return env.get("PULUMI_PYTHON_CMD", "python3"), env


class Programs:
    """The programs this host runs. Once closed it starts no more, and those it had are stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False

    def run(self, args: list[str], env: dict[str, str], cwd: str | None) -> int | None:
        """The program's exit code, or None if the host is shutting down (before or while it runs)."""
        with self._lock:  # so close() cannot miss a program that is being started
            if self._closed:
                return None
            program = subprocess.Popen(args, env=env, cwd=cwd)
        code = program.wait()
        with self._lock:
            return None if self._closed else code

    def close(self) -> None:
        """Stop every program and anything they started (this host's whole process tree)."""
        with self._lock:
            self._closed = True
        stop_descendants(os.getpid())


class PythonLanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine_address: str, tracing: str, programs: Programs) -> None:
        self.engine_address = engine_address
        self.tracing = tracing
        self.programs = programs

    def Handshake(self, request: Any, context: Any) -> Any:
        if request.engine_address:
            self.engine_address = request.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPackagesResponse()

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        return language_pb2.GetProgramDependenciesResponse()

    def RuntimeOptionsPrompts(self, request: Any, context: Any) -> Any:
        return language_pb2.RuntimeOptionsResponse()

    def InstallDependencies(self, request: Any, context: Any) -> Any:
        return iter(())

    def About(self, request: Any, context: Any) -> Any:
        python, _ = _python_for(request.info if request.HasField("info") else None)
        return language_pb2.AboutResponse(executable=python, version=sys.version.split()[0])

    def Cancel(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    def Run(self, request: Any, context: Any) -> Any:
        info = request.info if request.HasField("info") else None
        python, env = _python_for(info)
        args = [python, "-u", str(EXEC_SCRIPT)]

        def flag(name: str, value: str) -> None:
            if value:
                args.extend([f"--{name}", value])

        flag("monitor", request.monitor_address)
        flag("engine", self.engine_address)
        flag("project", request.project)
        flag("stack", request.stack)
        flag("pwd", request.pwd)
        flag("dry_run", "true" if request.dryRun else "false")
        flag("parallel", str(request.parallel))
        flag("tracing", self.tracing)
        flag("organization", request.organization)
        flag("root_directory", info.root_directory if info is not None else "")
        args.append(request.program or ".")
        args.extend(request.args)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        try:
            code = self.programs.run(args, env, request.pwd or None)
        except OSError as exc:
            return language_pb2.RunResponse(error=f"Problem executing program (could not run {python}): {exc}")
        if code is None:
            return language_pb2.RunResponse(error="The program was stopped: the language host is shutting down")
        if code == 0:
            return language_pb2.RunResponse()
        if code == USER_ACTIONABLE_EXIT:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")


def main(argv: list[str]) -> None:
    tracing, positional = "", []
    it = iter(argv)
    for arg in it:
        if arg.startswith("-"):
            name, _, value = arg.lstrip("-").partition("=")
            if name == "tracing":
                tracing = value or next(it, "")
            continue
        positional.append(arg)
    become_subreaper()  # a program's orphans stay in our tree, so close() reaches them
    programs = Programs()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(
        PythonLanguageHost(positional[0] if positional else "", tracing, programs), server
    )
    # The engine stops its plugins with SIGINT/SIGTERM: exit quietly, as the Go host does. If the engine
    # is gone, nobody will: notice it ourselves. Either way the program is stopped first.
    exit_code: list[int] = []
    stop = Wakeup()  # not threading.Event: its set() takes a lock, which a signal handler must not

    def request_stop(code: int) -> None:
        exit_code.append(code)
        stop.set()

    signal.signal(signal.SIGINT, lambda *_: request_stop(0))
    signal.signal(signal.SIGTERM, lambda *_: request_stop(0))
    EngineWatch(lambda: request_stop(1)).start()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    while not exit_code:
        stop.wait()
    programs.close()
    server.stop(0)
    # Not sys.exit(): a handler thread may still be blocked (in Programs.run, or on a dead engine), and the
    # interpreter would wait for it at exit.
    os._exit(exit_code[0])


if __name__ == "__main__":
    main(sys.argv[1:])
