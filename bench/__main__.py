"""`make bench`: every benchmark side by side in one run; writes bench/results/*.json and BENCHMARKS.md.

All against the emulator on loopback. Figures are medians of several runs; the machine is recorded.
Sections can run on their own: `python -m bench requests_per_operation` or
`BENCH_SECTIONS=requests_per_operation make bench`; BENCHMARKS.md is then rendered from the new
results of those sections and the recorded results of the others.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml
from pulumi_sendgrid_tracking import ClickTrackingProvider
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.singleton import changes_to_send, give_back_target
from pulumi_sendgrid_tracking.tracking import SETTINGS

from pipelines.common import run_pulumi
from pipelines.report import PROVIDERS
from tools.pulumi_project import PROJECT, ROOT, PulumiProject, engine_bin

from .discover import discover_section
from .null_provider import PACKAGE_PROGRAM
from .null_provider import PROGRAM as NULL_PROGRAM
from .scale import against_limit, against_limit_postgres, plot_scale, scale, small_fleet

KEY = "SG.bench-key"
RESULTS = ROOT / "bench" / "results"
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1,10,50,200").split(",")]
LATENCY = 0.05
SERVER_THREADS = 4  # pulumi.dynamic's provider server: ThreadPoolExecutor(max_workers=4)
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextmanager
def stack(n: int, latency: float = 0.0, *, rate: tuple[int, float] | None = None) -> Iterator[PulumiProject]:
    """A fresh project with N subusers (click tracking on) in a fresh emulator."""
    state = EmulatorState(api_keys=[KEY], latency=latency)
    if rate:
        state.configure(rate_limit=rate[0], rate_window=rate[1])
    for i in range(n):
        state.add_subuser("global", f"u{i:03}", enabled=True)
    bin_dir = engine_bin()
    if bin_dir is None:
        raise SystemExit("bench: the Pulumi engine is not built; run `make engine`")
    with Emulator(state) as emulator, tempfile.TemporaryDirectory() as tmp:
        project = PulumiProject(Path(tmp), emulator, bin_dir, api_key=KEY)
        project.env["SENDGRID_RETRY_BUDGET"] = "300"
        yield project


def fleet(n: int, enabled: bool = False) -> list[dict[str, Any]]:
    return [{"username": f"u{i:03}", "enabled": enabled} for i in range(n)]


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def counts(project: PulumiProject) -> dict[str, int]:
    log_ = project.api_log()
    return {"GET": sum(m == "GET" for m, _, _ in log_), "PATCH": sum(m == "PATCH" for m, _, _ in log_)}


# 1. requests per lifecycle operation, for every setting ----------------------------------------

SETTINGS_PROGRAM = """
import pulumi
from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking

KINDS = {"click": ClickTracking, "open": OpenTracking, "subscription": SubscriptionTracking,
         "google_analytics": GoogleAnalytics}
for spec in pulumi.Config().get_object("resources") or []:
    spec = dict(spec)
    KINDS[spec.pop("kind")](spec.pop("name"), **spec)
"""
"""A program of the benchmark's own: the resources listed in the config key `resources` (any setting)."""

SETTING_VALUES: dict[str, dict[str, dict[str, Any]]] = {
    "click": {"found": {"enabled": True}, "desired": {"enabled": False}, "update": {"enabled": True}},
    "open": {"found": {"enabled": True}, "desired": {"enabled": False}, "update": {"enabled": True}},
    "subscription": {
        "found": {"enabled": False, "plain_content": "Unsubscribe: <% %>", "html_content": "<p><% Leave %></p>"},
        "desired": {"enabled": True, "plain_content": "Bye: <% %>", "url": "https://example.com/bye"},
        "update": {"url": "https://example.com/farewell"},
    },
    "google_analytics": {
        "found": {"enabled": False, "utm_source": "sendgrid.com", "utm_campaign": "website", "utm_medium": "email"},
        "desired": {"enabled": True, "utm_source": "sendgrid.com", "utm_campaign": "spring"},
        "update": {"utm_campaign": "summer"},
    },
}
"""Per setting: what SendGrid holds before the stack (`found`), the managed fields the stack sets, and an
update of one of them. Fields left out of `desired` (html_content, utm_medium) are unmanaged."""


def declare_kept(project: PulumiProject, setting: str, values: list[dict[str, Any]], skip: set[str]) -> None:
    """Like `declare`, for the subusers not in `skip` (in order), with `values` in that order."""
    names = [f"u{i:03}" for i in range(len(values) + len(skip)) if f"u{i:03}" not in skip]
    resources = [
        {"name": name, "kind": setting, "on_behalf_of": name, **v} for name, v in zip(names, values, strict=True)
    ]
    path = project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data["config"] = {f"{PROJECT}:resources": resources}
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def declare(project: PulumiProject, setting: str, values: list[dict[str, Any]]) -> None:
    """The benchmark's program, declaring one resource of `setting` per subuser u000, u001, ..."""
    (project.dir / "__main__.py").write_text(SETTINGS_PROGRAM)
    resources = [
        {"name": f"u{i:03}", "kind": setting, "on_behalf_of": f"u{i:03}", **fields} for i, fields in enumerate(values)
    ]
    path = project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    (data := data or {})["config"] = {f"{PROJECT}:resources": resources}
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def give_backs(project: PulumiProject, accounts: set[str] | None = None) -> dict[str, int]:
    """The fewest requests giving these accounts' settings back can take (all of the stack's when None), by the
    provider's own rule: one GET for each whose target is not empty (`keep` has none), then one PATCH where the
    target differs from what SendGrid holds (no drift here: the recorded values)."""
    minimum = {"GET": 0, "PATCH": 0}
    for resource in project.export()["deployment"].get("resources", []):
        provider = PROVIDERS.get(resource["type"])
        outs = resource.get("outputs") or {}
        if provider is None or (accounts is not None and outs.get("on_behalf_of") not in accounts):
            continue
        target = give_back_target(
            provider.setting, outs.get("on_delete") or "restore", provider.recorded_managed(outs), provider.held(outs)
        )
        minimum["GET"] += bool(target)
        minimum["PATCH"] += bool(changes_to_send(target, outs))
    return minimum


def requests_for_setting(setting: str, n: int) -> list[dict[str, Any]]:
    values = SETTING_VALUES[setting]
    with stack(n) as project:
        for i in range(n):  # half the accounts already hold the desired values
            held = {**values["found"], **(values["desired"] if i % 2 == 0 else {})}
            project.emulator.state.set_out_of_band("global", f"u{i:03}", setting, held)
        declare(project, setting, [values["desired"]] * n)
        rows = []

        def row(op: str, minimum: dict[str, int], run: Callable[[], Any]) -> None:
            project.api_log()
            run()
            got = counts(project)
            rows.append(
                {
                    "setting": setting,
                    "operation": op,
                    "requests": got,
                    "minimum": minimum,
                    "excess": sum(got.values()) - sum(minimum.values()),
                }
            )

        row("preview", {"GET": 0, "PATCH": 0}, lambda: project.run("preview"))
        row("up (create)", {"GET": n, "PATCH": n // 2}, project.up)  # the ledger's one GET per account
        row("up (no change)", {"GET": 0, "PATCH": 0}, project.up)
        declare(project, setting, [{**values["desired"], **values["update"]}] * 3 + [values["desired"]] * (n - 3))
        row("up (update 3)", {"GET": 0, "PATCH": 3}, project.up)
        # one GET per setting resource; the ledger sends nothing
        row("refresh", {"GET": n, "PATCH": 0}, lambda: project.run("refresh", "--yes", "--skip-preview"))
        # `pulumi refresh` with its preview reads every setting twice (the preview's read, then the refresh's);
        # the pipelines' deploy, `up --refresh --skip-preview`, reads once.
        row("refresh (with preview)", {"GET": n, "PATCH": 0}, lambda: project.run("refresh", "--yes"))
        row("up --refresh --skip-preview", {"GET": n, "PATCH": 0}, lambda: project.up("--refresh"))
        # Accounts leaving the program are given back from live values: one GET each, then a PATCH where needed.
        # The first three were updated (they differ from their originals), the last three were not.
        leaving = {f"u{i:03}" for i in (*range(3), *range(n - 3, n))}
        remove = give_backs(project, leaving)
        kept = [
            {**values["desired"], **(values["update"] if i < 3 else {})} for i in range(n) if f"u{i:03}" not in leaving
        ]
        declare_kept(project, setting, kept, skip=leaving)
        row("up (6 accounts removed)", remove, project.up)
        row("destroy", give_backs(project), lambda: project.run("destroy", "--yes", "--skip-preview"))
    return rows


def requests_per_operation(n: int = 10) -> dict[str, Any]:
    assert set(SETTING_VALUES) == set(SETTINGS), "every setting needs its values"
    rows = []
    for setting in SETTINGS:
        log(f"requests: {setting}")
        rows += requests_for_setting(setting, n)
    return {"subusers": n, "settings": list(SETTINGS), "rows": rows}


# 2. time against N, side by side ---------------------------------------------------------------


@contextmanager
def rss_watch(project_dir: Path) -> Iterator[dict[str, int]]:
    """Peak RSS (VmHWM, kB) of the provider server processes started for a project."""
    peak = {"kb": 0}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"pulumi.dynamic" not in cmdline or os.readlink(f"/proc/{pid}/cwd") != str(project_dir):
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak["kb"] = max(peak["kb"], int(line.split()[1]))
                except OSError:
                    continue
            stop.wait(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def api_phase(entries: list[dict[str, Any]]) -> tuple[float, float]:
    """(seconds from the first request's start to the last one's end, mean requests in flight)."""
    if not entries:
        return 0.0, 0.0
    ends = [e["time"] for e in entries]
    span = max(ends) - (min(ends) - LATENCY)
    return span, len(entries) * LATENCY / span


UNLIMITED = (1_000_000, 1.0)
"""An emulator rate limit no run reaches: the default (SendGrid's 600/min) would turn the timing of a few hundred
accounts' up and destroy into waits for the next window."""


def engine_run(n: int, variant: str, latency: float = LATENCY) -> dict[str, float]:
    with stack(n, latency, rate=UNLIMITED) as project:
        if variant == "null":
            shutil.copy(ROOT / "bench" / "null_provider.py", project.dir / "null_provider.py")
            (project.dir / "__main__.py").write_text(NULL_PROGRAM)
        elif variant == "package":
            (project.dir / "__main__.py").write_text(PACKAGE_PROGRAM)
        project.set_fleet(subusers=fleet(n))
        with rss_watch(project.dir) as peak:
            up = timed(project.up)
            after_up = len(project.emulator.state.request_log())
            destroy = timed(lambda: project.run("destroy", "--yes", "--skip-preview"))
        entries = project.emulator.state.request_log()
        up_api, up_in_flight = api_phase(entries[:after_up])
        destroy_api, destroy_in_flight = api_phase(entries[after_up:])
        return {
            "up": up,
            "destroy": destroy,
            "peak_rss_kb": peak["kb"],
            "up_api": up_api,
            "up_in_flight": up_in_flight,
            "destroy_api": destroy_api,
            "destroy_in_flight": destroy_in_flight,
        }


def plain_script(n: int) -> float:
    """What a user without IaC runs: the official client, N PATCHes one after another."""
    from sendgrid import SendGridAPIClient

    state = EmulatorState(api_keys=[KEY], latency=LATENCY)
    for i in range(n):
        state.add_subuser("global", f"u{i:03}", enabled=True)
    with Emulator(state) as emulator:
        client = SendGridAPIClient(api_key=KEY, host=emulator.base_url)

        def run() -> None:
            for i in range(n):
                response = client.client.tracking_settings.click.patch(
                    request_body={"enabled": False}, request_headers={"on-behalf-of": f"u{i:03}"}
                )
                assert response.status_code == 200

        return timed(run)


def time_against_n() -> dict[str, Any]:
    rows = []
    for n in SIZES:
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "null": []}
        plain: list[float] = []
        for repeat in range(REPEATS):
            for variant in ("ours", "null"):
                log(f"time: N={n} {variant} run {repeat + 1}/{REPEATS}")
                runs[variant].append(engine_run(n, variant))
            plain.append(plain_script(n))
        keys = ("up", "destroy", "peak_rss_kb", "up_api", "up_in_flight", "destroy_api", "destroy_in_flight")
        med = {v: {k: statistics.median(r[k] for r in runs[v]) for k in keys} for v in runs}
        floor_up = math.ceil(n / SERVER_THREADS) * LATENCY * 2  # GET + PATCH per account
        floor_destroy = math.ceil(n / SERVER_THREADS) * LATENCY
        rows.append(
            {
                "n": n,
                "ours_up": med["ours"]["up"],
                "null_up": med["null"]["up"],
                "plain_script": statistics.median(plain),
                "floor_up": floor_up,
                "ours_destroy": med["ours"]["destroy"],
                "null_destroy": med["null"]["destroy"],
                "floor_destroy": floor_destroy,
                "up_excess_over_floor": (med["ours"]["up"] - med["null"]["up"]) / floor_up,
                "destroy_excess_over_floor": (med["ours"]["destroy"] - med["null"]["destroy"]) / floor_destroy,
                "up_api": med["ours"]["up_api"],
                "up_in_flight": med["ours"]["up_in_flight"],
                "destroy_api": med["ours"]["destroy_api"],
                "destroy_in_flight": med["ours"]["destroy_in_flight"],
                "peak_rss_mb_ours": med["ours"]["peak_rss_kb"] / 1024,
                "peak_rss_mb_null": med["null"]["peak_rss_kb"] / 1024,
                "runs": runs,
                "plain_runs": plain,
            }
        )
    return {"latency_s": LATENCY, "server_threads": SERVER_THREADS, "repeats": REPEATS, "rows": rows}


# 2b. the state's shape against the engine's floor (issue 18) ----------------------------------------

DESIGN_SIZES = [int(n) for n in os.environ.get("BENCH_DESIGN_SIZES", "150,200").split(",")]
DESIGN_LATENCIES = [float(x) for x in os.environ.get("BENCH_DESIGN_LATENCIES", "0,0.05").split(",")]
PREVIOUS_DESIGNS = {
    "0.2.0 (a setting and its adoption record per account)": {
        "n": 200,
        "latency_s": 0.05,
        "up": 18.16,
        "destroy": 15.12,
    },
    "0.1.x (one resource per account, no records)": {"n": 200, "latency_s": 0.05, "up": 7.97, "destroy": 4.89},
}
"""Recorded figures of the earlier designs, 200 subusers at 50 ms, on a machine of this kind (issue 18)."""


def design() -> dict[str, Any]:
    """Ours (one resource per setting, plus the stack's ledger) against a null dynamic provider with one
    resource per account that sends nothing: `up` and `destroy` of N accounts, interleaved runs, medians.
    Ours twice: the main job (fleet file, two exports) and the package in the null program's shape."""
    rows = []
    for latency in DESIGN_LATENCIES:
        for n in DESIGN_SIZES:
            runs: dict[str, list[dict[str, float]]] = {"ours": [], "package": [], "null": []}
            for repeat in range(REPEATS):
                for variant, done in runs.items():
                    log(f"design: N={n} latency={latency} {variant} run {repeat + 1}/{REPEATS}")
                    done.append(engine_run(n, variant, latency))
            med = {v: {k: statistics.median(r[k] for r in runs[v]) for k in ("up", "destroy")} for v in runs}
            rows.append(
                {
                    "n": n,
                    "latency_s": latency,
                    "ours_up": med["ours"]["up"],
                    "package_up": med["package"]["up"],
                    "null_up": med["null"]["up"],
                    "up_ratio": med["ours"]["up"] / med["null"]["up"],
                    "package_up_ratio": med["package"]["up"] / med["null"]["up"],
                    "ours_destroy": med["ours"]["destroy"],
                    "package_destroy": med["package"]["destroy"],
                    "null_destroy": med["null"]["destroy"],
                    "destroy_ratio": med["ours"]["destroy"] / med["null"]["destroy"],
                    "package_destroy_ratio": med["package"]["destroy"] / med["null"]["destroy"],
                    "engine_resources_ours": n + 1,
                    "engine_resources_null": n,
                    "runs": runs,
                }
            )
    return {"repeats": REPEATS, "rows": rows, "previous_designs": PREVIOUS_DESIGNS}


# 3. rate limit ---------------------------------------------------------------------------------


def rate_limit(n: int = 200, limit: int = 20) -> dict[str, Any]:
    with stack(n, rate=(limit, 1.0)) as project:
        project.set_fleet(subusers=fleet(n))
        result = project.up(check=False)
        entries = project.emulator.state.request_log()
    ok = [e for e in entries if e["status"] == 200]
    limited = sum(e["status"] == 429 for e in entries)
    other = len(entries) - len(ok) - limited
    span = max(e["time"] for e in ok) - min(e["time"] for e in ok)
    achieved = (len(ok) - 1) / span if span > 0 else float("inf")
    return {
        "subusers": n,
        "limit_per_s": limit,
        "pulumi_exit": result.returncode,
        "requests": len(entries),
        "ok": len(ok),
        "rate_limited": limited,
        "other_failures": other,
        "needed": 2 * n,
        "wasted_beyond_429_retries": len(entries) - 2 * n - limited,
        "achieved_per_s": achieved,
        "achieved_ratio": achieved / limit,
    }


# 4. handler overhead -----------------------------------------------------------------------------


def handler_overhead(calls: int = 1000) -> dict[str, Any]:
    state = EmulatorState(api_keys=[KEY], rate_limit=10**9)
    state.add_subuser("global", "alice", enabled=True)
    with Emulator(state) as emulator:
        provider = ClickTrackingProvider()
        os.environ["SENDGRID_API_KEY"] = KEY
        os.environ["SENDGRID_BASE_URL"] = emulator.base_url
        news = {"on_behalf_of": "alice", "region": "global", "on_delete": "restore"}

        def ours() -> None:
            for i in range(calls):
                enabled = bool(i % 2)
                provider.update(
                    "global/alice", {"enabled": not enabled, "original_enabled": True}, {**news, "enabled": enabled}
                )

        session = requests.Session()
        headers = {"Authorization": f"Bearer {KEY}", "on-behalf-of": "alice"}
        url = emulator.base_url + "/v3/tracking_settings/click"

        def bare() -> None:
            for i in range(calls):
                session.patch(url, json={"enabled": bool(i % 2)}, headers=headers, timeout=30).raise_for_status()

        ours_runs, bare_runs = [], []
        for _ in range(5):  # alternate, so drift in the machine hits both alike
            bare_runs.append(timed(bare))
            ours_runs.append(timed(ours))
    ours_med, bare_med = statistics.median(ours_runs), statistics.median(bare_runs)
    return {
        "calls": calls,
        "ours_s": ours_med,
        "bare_requests_s": bare_med,
        "ratio": ours_med / bare_med,
        "ours_runs": ours_runs,
        "bare_runs": bare_runs,
    }


# report --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    version = run_pulumi(
        ["version"], env={**os.environ, "PATH": f"{engine_bin()}:{os.environ['PATH']}"}, timeout=60
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "pulumi": version,
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def plot(times: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = times["rows"]
    ns = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in [
        ("ours_up", "this provider: pulumi up"),
        ("null_up", "null provider: pulumi up (engine floor)"),
        ("plain_script", "plain script, official client (N PATCHes)"),
        ("floor_up", "network floor: ceil(N/4) x 2 x latency"),
    ]:
        ax.plot(ns, [r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("subusers (N)")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"Create N accounts, {int(times['latency_s'] * 1000)} ms emulator latency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "time_vs_n.png", dpi=110)


SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "requests_per_operation": requests_per_operation,
    "handler_overhead": handler_overhead,
    "rate_limit": rate_limit,
    "time_against_n": time_against_n,
    "design": design,
    "small_fleet": small_fleet,
    "scale": scale,
    "against_limit": against_limit,
    "against_limit_postgres": against_limit_postgres,
    "discover": discover_section,
}


def selected(argv: list[str]) -> list[str]:
    """The sections to run: the arguments, else BENCH_SECTIONS (comma-separated), else all of them."""
    names = argv or [n for n in os.environ.get("BENCH_SECTIONS", "").split(",") if n]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"bench: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return names or list(SECTIONS)


def main(argv: list[str]) -> int:
    """Run the selected sections, write their bench/results/*.json, and render BENCHMARKS.md from every
    section's latest results (each carries the machine and date of the run that measured it)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    this_run = machine()
    sections: dict[str, dict[str, Any]] = {}
    for name in selected(argv):
        log(f"running {name}")
        sections[name] = {
            "machine": {**this_run, "loadavg_at_start": [round(v, 2) for v in os.getloadavg()]},
            name: SECTIONS[name](),
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(sections[name], indent=2, sort_keys=True))
    if "time_against_n" in sections:
        plot(sections["time_against_n"]["time_against_n"])
    if "scale" in sections:
        plot_scale(sections["scale"]["scale"], RESULTS / "scale.png")
    for name in SECTIONS:
        path = RESULTS / f"{name}.json"
        if name not in sections and path.exists():
            sections[name] = json.loads(path.read_text())
    missing = [name for name in SECTIONS if name not in sections]
    if missing:
        log(f"no results yet for {', '.join(missing)}: run them before BENCHMARKS.md can be written")
        return 1
    from .report import render

    (ROOT / "BENCHMARKS.md").write_text(render(sections), encoding="utf-8")
    log("wrote BENCHMARKS.md and bench/results/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
