"""Bench sections for issue 15: the cost of a small fleet, the scale curve, and a sharded create against the limit.

- `small_fleet`: a one-account `pulumi preview`, this program beside the null provider (medians of
  interleaved runs), and where the time goes: the imports of each process a preview starts.
- `scale`: preview, up (create), up (no change) and destroy at N setting resources (N engine
  resources and the stack's originals ledger), unsharded up to BENCH_SCALE_UNSHARDED_MAX and sharded,
  this program beside a null program with one resource per setting, emulator at 50 ms; growth exponents.
- `against_limit`: a sharded create of BENCH_LIMIT_N setting resources under an emulator rate limit,
  against the floor (requests needed / allowed rate), counting 429s and errors from the emulator's log.
- `against_limit_postgres`: the same, every shard stack's state in one table of a throwaway PostgreSQL
  server (tests/support/postgres.py; Debian's `postgresql`), the state backend a shared CI fleet would use.
  Then the file backend again at the same N, for a comparison under the same load (BENCH_LIMIT_COMPARE=0:
  not). A quick run: `BENCH_LIMIT_N=400 BENCH_LIMIT_RATE=10 python -m bench against_limit_postgres`.

Every size and count is an environment variable (see `Knobs`), so a quick run is possible:
`BENCH_SCALE_SIZES=40,200 BENCH_SCALE_SHARDED_MIN=200 BENCH_SCALE_SHARD_SIZE=50 BENCH_LIMIT_N=400
BENCH_LIMIT_RATE=10 BENCH_SMALL_REPEATS=3 python -m bench small_fleet scale against_limit` takes a few
minutes. At the defaults, `against_limit` takes about 20 minutes (its floor is 1,000 s) and `scale` stops
starting runs after BENCH_SCALE_BUDGET seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState

from tests.support.postgres import PostgresServer
from tools.pulumi_project import PROJECT, ROOT, PulumiProject, engine_bin

RESULTS = ROOT / "bench" / "results"

KEY = "SG.bench-key"
LATENCY = 0.05
SETTINGS_PER_ACCOUNT = 4
DESIRED = {  # all four differ from the emulator's defaults: a create is one GET and one PATCH per setting
    "click": {"enabled": False},
    "open": {"enabled": False},
    "subscription": {"enabled": True},
    "googleAnalytics": {"enabled": True},
}
NULL_SETTINGS = ("click", "open", "subscription", "google_analytics")


def _ints(name: str, default: str) -> list[int]:
    return [int(v) for v in os.environ.get(name, default).split(",") if v.strip()]


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# -- projects -------------------------------------------------------------------------------------------

NULL_PROGRAM = """
import pulumi
from null_provider import NullResource

config = pulumi.Config()
for username in config.get_object("accounts") or []:
    for setting in config.get_object("settings") or []:
        NullResource(f"{setting}/global/{username}", False, username)
"""
"""The engine's floor: a null dynamic provider with one resource per setting, sending nothing."""


def usernames(accounts: int) -> list[str]:
    return [f"u{i:05}" for i in range(accounts)]


def new_state(accounts: int, latency: float = LATENCY, rate: tuple[int, float] | None = None) -> EmulatorState:
    state = EmulatorState(api_keys=[KEY], latency=latency)
    state.configure(rate_limit=rate[0] if rate else 10**9, rate_window=rate[1] if rate else 1.0)
    for name in usernames(accounts):
        state.add_subuser("global", name)
    return state


def _write_config(project: PulumiProject, config: dict[str, Any]) -> None:
    path = project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data or {}
    data["config"] = {**(data.get("config") or {}), **config}
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def shard_projects(
    stack: ExitStack,
    emulator: Emulator,
    variant: str,
    accounts: int,
    shards: int,
    env: dict[str, str] | None = None,
    backend_url: str | None = None,
) -> list[PulumiProject]:
    """One project (own directory, stack, state file, provider process) per shard of `accounts` accounts.

    Ours: the fleet file (every account, four settings each) with `sendgrid-click-tracking:shard`.
    Null: the shard's slice of the accounts in config. With `backend_url` (postgres://...), every
    shard's state is in that one backend: each project's stack `dev` is renamed `shard-<i>` as soon as
    it is made, so they are the stacks of one project, as `pipelines/shards` makes them.
    """
    bin_dir = engine_bin()
    if bin_dir is None:
        raise SystemExit("bench: the Pulumi engine is not built; run `make engine`")
    names = usernames(accounts)
    projects = []
    for index in range(shards):
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        project = PulumiProject(
            tmp,
            emulator,
            bin_dir,
            api_key=KEY,
            env={"SENDGRID_RETRY_BUDGET": "600", **(env or {})},
            backend_url=backend_url,
        )
        if variant == "null":
            shutil.copy(ROOT / "bench" / "null_provider.py", project.dir / "null_provider.py")
            (project.dir / "__main__.py").write_text(NULL_PROGRAM)
            _write_config(
                project,
                {f"{PROJECT}:accounts": names[index::shards], f"{PROJECT}:settings": list(NULL_SETTINGS)},
            )
        else:
            fleet = {"defaults": DESIRED, "subusers": [{"username": n} for n in names]}
            (project.dir / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
            config: dict[str, Any] = {f"{PROJECT}:fleetFile": "fleet.yaml"}
            if shards > 1:
                config[f"{PROJECT}:shard"] = f"{index + 1}/{shards}"  # 1-based
            _write_config(project, config)
        if backend_url is not None:  # one backend: one name per shard (the config file is renamed with it)
            project.run("stack", "rename", f"shard-{index + 1}")
        projects.append(project)
    return projects


def run_all(projects: list[PulumiProject], args: list[str], parallel: int) -> dict[str, Any]:
    """Run `pulumi <args>` in every project, `parallel` at a time; wall time and each stack's time."""
    started = time.perf_counter()

    def one(project: PulumiProject) -> tuple[float, int, str]:
        t0 = time.perf_counter()
        result = project.run(*args, check=False)
        return time.perf_counter() - t0, result.returncode, (result.stderr or result.stdout)[-2000:]

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(one, projects))
    wall = time.perf_counter() - started
    failed = [out for _, code, out in results if code != 0]
    if failed:
        raise AssertionError(f"pulumi {' '.join(args)} failed in {len(failed)} stack(s):\n{failed[0]}")
    return {"wall": wall, "per_stack": [t for t, _, _ in results]}


def log_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "GET": sum(e["method"] == "GET" and e["status"] == 200 for e in entries),
        "PATCH": sum(e["method"] == "PATCH" and e["status"] == 200 for e in entries),
        "429": sum(e["status"] == 429 for e in entries),
        "errors": sum(e["status"] not in (200, 429) for e in entries),
    }


def state_bytes(project: PulumiProject) -> int:
    return sum(p.stat().st_size for p in project.state_dir.rglob("*.json") if "stacks" in p.parts)


# -- 1. small fleet ---------------------------------------------------------------------------------------

PROGRAM_IMPORTS = {
    "null": "import pulumi\nimport null_provider",
    "ours": (
        "import pulumi\nfrom pulumi_sendgrid_tracking import ClickTracking\n"
        "import pulumi_sendgrid_tracking.fleet, pulumi_sendgrid_tracking.stack_config"
    ),
}
SERVER_IMPORTS = (
    "import asyncio, base64, dill, grpc\nfrom google.protobuf import empty_pb2\n"
    "from pulumi.runtime import configure, proto, rpc, Settings\n"
    "from pulumi.runtime.proto import provider_pb2_grpc, ResourceProviderServicer\n"
    "from pulumi.dynamic import ResourceProvider, ConfigureRequest, Config\n"
)
UNPICKLE = "dill.loads(base64.b64decode({pickled!r}))"


def _pickled(variant: str, cwd: Path) -> str:
    code = (
        "from pulumi.dynamic.dynamic import serialize_provider\n"
        + (
            "from null_provider import NullProvider as P\n"
            if variant == "null"
            else "from pulumi_sendgrid_tracking.providers import ClickTrackingProvider as P\n"
        )
        + "print(serialize_provider(P()))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _process_phases(cwd: Path, host_dir: Path) -> dict[str, dict[str, str]]:
    """Per process a preview starts: the Python that process runs before it does any work."""
    return {
        "interpreter alone": {v: "pass" for v in ("null", "ours")},
        "language host (tools/engine/language_host.py)": {
            v: f"import sys; sys.path.insert(0, {str(host_dir)!r}); import language_host" for v in ("null", "ours")
        },
        "language host, before (the whole SDK for its protocol modules)": {
            v: "import grpc\nfrom pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2"
            for v in ("null", "ours")
        },
        "program process (SDK + the program's imports)": PROGRAM_IMPORTS,
        "provider process (server + unpickling the provider)": {
            v: SERVER_IMPORTS + UNPICKLE.format(pickled=_pickled(v, cwd)) for v in ("null", "ours")
        },
        "requests + urllib3 (ours: at the first request only, since this issue)": {
            "null": "import pulumi",
            "ours": "import pulumi\nimport requests, urllib3",
        },
    }


def _wall(code: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def _importtime_top(code: str, cwd: Path, prefixes: tuple[str, ...], top: int = 12) -> list[dict[str, Any]]:
    """The slowest imports (cumulative µs) under `prefixes` from `python -X importtime`."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    ).stderr
    rows: list[dict[str, Any]] = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, self_us, cumulative, name = (part.strip() for part in line.replace("import time:", "|").split("|"))
        if name.startswith(prefixes):
            rows.append({"module": name, "self_ms": int(self_us) / 1000, "cumulative_ms": int(cumulative) / 1000})
    return sorted(rows, key=lambda r: -r["cumulative_ms"])[:top]


def small_fleet() -> dict[str, Any]:
    repeats = _int("BENCH_SMALL_REPEATS", 9)
    bin_dir = engine_bin()
    if bin_dir is None:
        raise SystemExit("bench: the Pulumi engine is not built; run `make engine`")
    host = (bin_dir / ".complete").read_text() if (bin_dir / ".complete").exists() else ""
    runs: dict[str, list[float]] = {"ours": [], "null": []}
    loads = [load()]
    with ExitStack() as stack:
        emulator = stack.enter_context(Emulator(new_state(1)))
        projects = {v: shard_projects(stack, emulator, v, 1, 1)[0] for v in ("ours", "null")}
        # one account, one setting (click): the program's smallest fleet; the null program declares one resource
        fleet = {"subusers": [{"username": "u00000", "click": {"enabled": False}}]}
        (projects["ours"].dir / "fleet.yaml").write_text(yaml.safe_dump(fleet))
        (projects["null"].dir / "__main__.py").write_text(
            "import pulumi\nfrom null_provider import NullResource\nNullResource('subuser-u00000', False, 'u00000')\n"
        )
        for p in projects.values():
            p.run("preview")  # warm the page cache and the plugin lookups once
        for i in range(repeats):
            for variant in ("ours", "null") if i % 2 == 0 else ("null", "ours"):
                started = time.perf_counter()
                projects[variant].run("preview")
                runs[variant].append(time.perf_counter() - started)
            log(f"small fleet: run {i + 1}/{repeats}: ours {runs['ours'][-1]:.2f} s, null {runs['null'][-1]:.2f} s")
        requests_sent = len(emulator.state.request_log())
        loads.append(load())
        # where the time goes: the imports of each process, run on their own (same interleaving)
        cwd = projects["null"].dir
        phases = _process_phases(cwd, bin_dir)
        walls: dict[str, dict[str, list[float]]] = {p: {"null": [], "ours": []} for p in phases}
        for _ in range(repeats):
            for phase, codes in phases.items():
                for variant in ("ours", "null"):
                    walls[phase][variant].append(_wall(codes[variant], cwd))
        top = {
            "program process": _importtime_top(PROGRAM_IMPORTS["ours"], cwd, ("pulumi_sendgrid_tracking", "requests")),
            "provider process": _importtime_top(
                phases["provider process (server + unpickling the provider)"]["ours"],
                cwd,
                ("pulumi_sendgrid_tracking", "requests"),
            ),
        }
        loads.append(load())
    med = {v: statistics.median(r) for v, r in runs.items()}
    return {
        "repeats": repeats,
        "language_host": "python (tools/engine/language_host.py)" if "language-host=python" in host else "go",
        "preview_s": med,
        "ours_minus_null_s": med["ours"] - med["null"],
        "runs": runs,
        "requests_sent": requests_sent,
        "phases": [
            {
                "process": phase,
                "null_s": statistics.median(w["null"]),
                "ours_s": statistics.median(w["ours"]),
                "ours_minus_null_s": statistics.median(w["ours"]) - statistics.median(w["null"]),
            }
            for phase, w in walls.items()
        ],
        "importtime_top": top,
        "loadavg": loads,
    }


# -- 2. the scale curve -------------------------------------------------------------------------------------

OPERATIONS = ("preview", "up (create)", "up (no change)", "destroy")
ARGS = {
    "preview": ["preview"],
    "up (create)": ["up", "--yes", "--skip-preview"],
    "up (no change)": ["up", "--yes", "--skip-preview"],
    "destroy": ["destroy", "--yes", "--skip-preview"],
}


def lifecycle(
    variant: str,
    n: int,
    shards: int,
    parallel: int,
    *,
    rate: tuple[int, float] | None = None,
    env: dict[str, str] | None = None,
    operations: tuple[str, ...] = OPERATIONS,
    backend_url: str | None = None,
) -> dict[str, Any]:
    """The four operations on N setting resources in `shards` stacks, a fresh emulator world (and, with
    `backend_url`, every stack's state in that backend instead of a file backend each)."""
    accounts = math.ceil(n / SETTINGS_PER_ACCOUNT)
    out: dict[str, Any] = {"variant": variant, "n": n, "accounts": accounts, "shards": shards, "parallel": parallel}
    with ExitStack() as stack:
        emulator = stack.enter_context(Emulator(new_state(accounts, rate=rate)))
        projects = shard_projects(stack, emulator, variant, accounts, shards, env, backend_url)
        seen = 0
        for op in operations:
            before = load()
            result = run_all(projects, ARGS[op], parallel)
            entries = emulator.state.request_log()
            new, seen = entries[seen:], len(entries)
            out[op] = {
                **result,
                "requests": log_counts(new),
                "api_span": (max(e["time"] for e in new) - min(e["time"] for e in new)) if new else 0.0,
                "loadavg_before": before,
                "loadavg_after": load(),
            }
            if op == "up (create)":
                out["state_bytes"] = None if backend_url else sum(state_bytes(p) for p in projects)
                out["engine_resources"] = n * 2 if variant == "ours" else accounts * SETTINGS_PER_ACCOUNT * 2
            log(f"scale: {variant} N={n} shards={shards} {op}: {result['wall']:.1f} s {out[op]['requests']}")
    return out


def fit_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least squares slope of log(time) against log(N)."""
    pts = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx, my = statistics.fmean(x for x, _ in pts), statistics.fmean(y for _, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def scale() -> dict[str, Any]:
    """The four operations at each size, unsharded up to BENCH_SCALE_UNSHARDED_MAX, sharded above one shard.

    BENCH_SCALE_BUDGET (seconds, default 1200, 0 = none): no run starts once the section has taken that long; the
    runs left out are listed. Each run is written to bench/results/scale.partial.json as it ends.
    """
    sizes = _ints("BENCH_SCALE_SIZES", "100,250,1000,2500,10000")
    unsharded_max = _int("BENCH_SCALE_UNSHARDED_MAX", 250)
    per_shard = _int("BENCH_SCALE_SHARD_SIZE", 125)
    parallel = _int("BENCH_SCALE_PARALLEL", 4)
    budget = _int("BENCH_SCALE_BUDGET", 1200)
    sharded_min = _int("BENCH_SCALE_SHARDED_MIN", 1000)  # no sharded run below this N
    variants = [v for v in os.environ.get("BENCH_SCALE_VARIANTS", "ours,null").split(",") if v]
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for n in sizes:
        shards = max(1, math.ceil(n / per_shard))
        plan = [("unsharded", 1)] if n <= unsharded_max else []
        plan += [("sharded", shards)] if shards > 1 and n >= sharded_min else []
        for mode, count in plan:
            for variant in variants:
                if budget and time.monotonic() - started > budget:
                    skipped.append({"mode": mode, "variant": variant, "n": n, "shards": count, "reason": "time budget"})
                    continue
                runs.append({"mode": mode, **lifecycle(variant, n, count, parallel if count > 1 else 1)})
                (RESULTS / "scale.partial.json").write_text(json.dumps(runs, indent=1))
    curves: list[dict[str, Any]] = []
    for mode in ("unsharded", "sharded"):
        for variant in variants:
            for op in OPERATIONS:
                pts = [(r["n"], r[op]["wall"]) for r in runs if r["mode"] == mode and r["variant"] == variant]
                if pts:
                    curves.append(
                        {
                            "mode": mode,
                            "variant": variant,
                            "operation": op,
                            "points": pts,
                            "exponent": fit_exponent(pts),
                        }
                    )
    # where unsharded stops: the fitted curve (from its largest two sizes) carried on
    extrapolated: list[dict[str, Any]] = []
    for c in curves:
        if c["mode"] != "unsharded" or len(c["points"]) < 2:
            continue
        (n1, t1), (n2, t2) = c["points"][-2:]
        k = math.log(t2 / t1) / math.log(n2 / n1) if t1 > 0 and t2 > 0 and n2 != n1 else None
        if k is None:
            continue
        for n in sizes:
            if n > unsharded_max:
                extrapolated.append(
                    {**{x: c[x] for x in ("variant", "operation")}, "n": n, "seconds": t2 * (n / n2) ** k}
                )
    return {
        "latency_s": LATENCY,
        "settings_per_account": SETTINGS_PER_ACCOUNT,
        "per_shard": per_shard,
        "parallel": parallel,
        "unsharded_max": unsharded_max,
        "native_shards": True,
        "runs": runs,
        "curves": curves,
        "extrapolated": extrapolated,
        "skipped": skipped,
        "budget_s": budget,
        "section_s": time.monotonic() - started,
        "cores": os.cpu_count(),
    }


# -- 3. against the limit -----------------------------------------------------------------------------------


def against_limit(backend_url: str | None = None) -> dict[str, Any]:
    """A sharded create under a rate limit: time against the floor (requests needed / allowed rate).

    The emulator allows BENCH_LIMIT_RATE requests per second averaged over a fixed window of
    BENCH_LIMIT_WINDOW seconds (SendGrid publishes its limit per minute: 600/min). Each provider
    process paces itself (`sendgrid:maxRequestsPerSecond`, via SENDGRID_MAX_REQUESTS_PER_SECOND) to
    its share: BENCH_LIMIT_PARALLEL stacks run at once, each at HEADROOM x rate / parallel, which
    leaves room for the one request a pacer may add at a window's edge. Every stack has a file
    backend of its own, or with `backend_url` they all share that one.
    """
    n = _int("BENCH_LIMIT_N", 10000)
    rate = _int("BENCH_LIMIT_RATE", 20)
    window = float(os.environ.get("BENCH_LIMIT_WINDOW", "60"))
    per_shard = _int("BENCH_LIMIT_SHARD_SIZE", 125)
    parallel = _int("BENCH_LIMIT_PARALLEL", 4)
    headroom = float(os.environ.get("BENCH_LIMIT_HEADROOM", "0.98"))
    shards = max(1, math.ceil(n / per_shard))
    share = rate * headroom / parallel
    env = {"SENDGRID_MAX_REQUESTS_PER_SECOND": f"{share:.3f}"}
    needed = 2 * n  # the ledger's GET of each setting taken over and its PATCH (all four differ from the defaults)
    floor = needed / rate
    backend = "postgres" if backend_url else "file"
    log(f"against the limit ({backend}): N={n}, {shards} shards, {parallel} at once, {rate}/s, floor {floor:.0f} s")
    run = lifecycle(
        "ours",
        n,
        shards,
        parallel,
        rate=(int(rate * window), window),
        env=env,
        operations=("up (create)",),
        backend_url=backend_url,
    )
    create = run["up (create)"]
    sent = create["requests"]["GET"] + create["requests"]["PATCH"]
    return {
        "backend": backend,
        "n": n,
        "rate_per_s": rate,
        "window_s": window,
        "shards": shards,
        "per_shard": per_shard,
        "parallel": parallel,
        "headroom": headroom,
        "pacing_per_process": share,
        "native_shards": True,
        "requests_needed": needed,
        "floor_s": floor,
        "wall_s": create["wall"],
        "ratio_to_floor": create["wall"] / floor,
        "requests": create["requests"],
        "failed_requests": create["requests"]["429"] + create["requests"]["errors"],
        "api_span_s": create["api_span"],
        "achieved_per_s": sent / create["api_span"] if create["api_span"] else None,
        "per_stack_s": create["per_stack"],
        "loadavg": [create["loadavg_before"], create["loadavg_after"]],
        "latency_s": LATENCY,
        "state_bytes": run["state_bytes"],
    }


def against_limit_postgres() -> dict[str, Any]:
    """`against_limit` with every shard stack's state in one PostgreSQL database (a throwaway local server)."""
    with PostgresServer() as server:
        server.create_database("bench")
        result = against_limit(server.url("bench"))
        result["state_bytes"] = int(
            server.admin_sql(
                "SELECT coalesce(sum(octet_length(data->>'data') / 4 * 3), 0) FROM pulumi_state "
                "WHERE key LIKE '%/stacks/%.json'",  # as the file backend's count: no .bak
                "bench",
            ).strip()
        )
        result["postgres"] = server.admin_sql("SHOW server_version").strip()
    if os.environ.get("BENCH_LIMIT_COMPARE", "1") == "1":  # the file backend at the same N, on the machine as it is now
        result["file_same_run"] = against_limit()
    return result


# -- plot -----------------------------------------------------------------------------------------------------


def plot_scale(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(OPERATIONS), figsize=(16, 4.5), sharey=True)
    styles = {
        ("ours", "unsharded"): "o-",
        ("null", "unsharded"): "s--",
        ("ours", "sharded"): "o-",
        ("null", "sharded"): "s--",
    }
    colours = {"unsharded": "tab:red", "sharded": "tab:blue"}
    for ax, op in zip(axes, OPERATIONS, strict=True):
        for c in results["curves"]:
            if c["operation"] != op:
                continue
            ns, ts = zip(*c["points"], strict=True)
            k = f", k={c['exponent']:.2f}" if c["exponent"] is not None else ""
            ax.plot(
                ns,
                ts,
                styles[(c["variant"], c["mode"])],
                color=colours[c["mode"]],
                alpha=1.0 if c["variant"] == "ours" else 0.55,
                label=f"{c['variant']}, {c['mode']}{k}",
            )
        ext = [e for e in results["extrapolated"] if e["operation"] == op and e["variant"] == "ours"]
        if ext:
            ax.plot(
                [e["n"] for e in ext],
                [e["seconds"] for e in ext],
                "x:",
                color="tab:red",
                label="ours, unsharded (extrapolated)",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op)
        ax.set_xlabel("setting resources N")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("seconds (wall)")
    fig.suptitle(f"Time against N, {int(results['latency_s'] * 1000)} ms emulator latency, log-log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
