"""`make reliability`: run the reliability suites and write docs/reliability.md from their results.

Every figure in the document comes from a test that asserted it; nothing is typed by hand.

The long run of the randomized stateful test (tests/e2e/test_stateful.py) writes its figures to
docs/stateful.json (kept in git, so the section survives a partial run); its size comes from
STATEFUL_EXAMPLES / STATEFUL_STEPS (default 15 sequences of 8 steps) and its seed from STATEFUL_SEED
(default: random, reported). `python -m tools.reliability stateful` runs only that test and rewrites only
its section of the document.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipelines.common import PipelineError, run_pulumi

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["tests/reliability", "tests/e2e/test_reliability.py", "tests/e2e/test_stateful.py"]
STATEFUL_SUITE = "tests/e2e/test_stateful.py"
DOC = ROOT / "docs" / "reliability.md"
STATEFUL_FIGURES = ROOT / "docs" / "stateful.json"
STATEFUL_HEADING = "## Randomized stateful test"
LONG_RUN = {"STATEFUL_EXAMPLES": "15", "STATEFUL_STEPS": "8"}

# What the suites run, rendered under the header of every full render (the prose of the old README's
# *Reliability figures*; edit it here, then `make reliability` or the test in tests/test_docs.py keeps the doc in step).
INTRO = [
    "`make reliability` runs the fault, load, interruption, ownership, bad-input and secret suites, and the",
    "long run of the randomized stateful test, and writes this page from their results. The handler-level",
    "matrix tries every fault kind (429, 429 without reset, 500, 502, 503, 504, connection reset, hang,",
    "malformed body) against create, read, update and delete of every setting, transient and persistent",
    "(288 cases). Through the real engine, five transient cases and one persistent case run per setting.",
    "The bad-input table covers each setting's own fields and every configuration mistake, each rejected",
    "at preview with 0 requests. The same suites (with a short stateful run) run in `make test`.",
    "",
]
# The stateful test's runs, and what writing it found: rendered in its section whether or not it ran.
STATEFUL_RUNS = [
    "The faults are 429 storms, 500s and 503s on GET or PATCH (once or persistently), PATCHes SendGrid applied",
    "before answering with a 500, a 503 or a malformed body; the interruptions are SIGINT, two SIGINTs or",
    "SIGKILL, sent when the emulator's request log shows the run got that far. Each edit of the program may",
    "deploy at once, under a fault or interrupted, so most sequences reach one; they hit creates, updates,",
    "give-backs (an account removed, `destroy`, `destroy --target`), refreshes and the deploy script alike.",
    "A failure prints the shrunk sequence as rule calls, with comments saying what each step ran and found.",
    "`make test` runs 3 sequences of 6 steps with the fixed seed `STATEFUL_SEED=0` (2 to 8 minutes);",
    "`make reliability` runs a long one (`STATEFUL_EXAMPLES=15 STATEFUL_STEPS=8` by default, a random seed",
    "this page names; `python -m tools.reliability stateful` runs only that). Writing it turned up one",
    "violation, now fixed: an update whose PATCH SendGrid applied but whose answer was lost failed and kept",
    'the old value in the state, so a program reverted to that value previewed "no changes" while SendGrid',
    "held the new one; update now re-reads the setting after a failed PATCH, as create does",
    "(`test_a_reverted_update_whose_patch_landed_but_failed` replays the sequence through the machine's rules).",
    "",
]
STATEFUL_REPORTS = [
    "The GitOps scripts run as CI runs them (`pipelines/preview`, then `pipelines/deploy`, with `drift-check`",
    "before or after them), and their reports are checked against the emulator's request log of each run, in",
    "both directions, for every account, setting and field (`tools/report_check.py`, shared with",
    "`tests/e2e/test_reports.py`): a preview sends nothing and its `state` is the stack's; every PATCH a deploy",
    "sent is in its JSON and Markdown with its account, setting and body, and nothing else is; one that changed",
    "SendGrid is `applied`, with SendGrid's own values before and after; a failed one changed nothing and is",
    "`failed` with its error; the preview announced each PATCH (exactly, or as `unknown`) and every `patch` it",
    "announced was sent, but for accounts whose state was not SendGrid's when it ran (a preview reads nothing);",
    "a drift-check sends only GETs and lists every setting as read live and every drifted managed field, only",
    "those (a setting the program no longer declares included: drift-check reads it on its own).",
    "",
]
STATEFUL_PHASES = ("create", "update", "give-back", "refresh", "pipeline")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return lines


def defined_cases() -> dict[str, Any]:
    """How many cases each suite defines: a case that failed records nothing, so `held` < `tried`.

    The test modules are imported by name (not followed by mypy, which checks tools/ but not tests/).
    """
    sys.path.insert(0, str(ROOT))
    engine = importlib.import_module("tests.e2e.test_reliability")
    matrix = importlib.import_module("tests.reliability.test_fault_matrix")
    tls = importlib.import_module("tests.reliability.test_tls")
    return {
        "settings": list(matrix.SETTINGS),
        "handler": len(matrix.KINDS) * len(matrix.OPERATIONS) * len(matrix.SETTINGS),
        "engine": engine.ENGINE_FAULT_CASES,
        "bad_input": len(engine.BAD_INPUTS),
        "tls": len(tls.ENVIRONMENTS),
    }


def _path(setting: str) -> str:
    return f"/v3/tracking_settings/{setting}"


def _error_examples(persistent: list[dict[str, Any]], settings: list[str]) -> list[str]:
    """What a persistent fault on update tells the user: the first setting's messages in full, and for
    each other setting whether its messages are the same with its own path (compared here, per fault kind)."""
    by_setting: dict[str, dict[str, str]] = defaultdict(dict)
    for f in persistent:
        if f["op"] == "update":
            by_setting[f.get("setting", "click")][f["kind"]] = f["error"]
    present = [s for s in settings if s in by_setting]
    if not present:
        return []
    first = present[0]
    out = ["", f"What a persistent fault looks like to the user ({first} update; each ends with a `Hint:` line):", ""]
    out += [f"- `{error}`" for error in sorted(set(by_setting[first].values()))]
    same: list[str] = []
    different: list[str] = []
    for other in present[1:]:
        expected = {k: e.replace(_path(first), _path(other)) for k, e in by_setting[first].items()}
        (same if by_setting[other] == expected else different).append(other)
    if same:
        out += ["", f"For {', '.join(same)}: the same messages, each with its own path (`{_path('<setting>')}`)."]
    for other in different:
        out += ["", f"For {other}:", ""] + [f"- `{error}`" for error in sorted(set(by_setting[other].values()))]
    return out


def render_stateful(figures: dict[str, Any] | None) -> list[str]:
    """The long run of the stateful test, from docs/stateful.json."""
    out = [STATEFUL_HEADING, ""]
    if figures is None:
        return [*out, *STATEFUL_REPORTS, *STATEFUL_RUNS, "Not run yet: `python -m tools.reliability stateful`.", ""]
    out += [
        "`tests/e2e/test_stateful.py`: a Hypothesis rule-based state machine that drives the real `pulumi` CLI",
        "against the emulator through random sequences of program edits (add, remove, rename with and without an",
        "alias, flip `enabled`, set `replace`/`utm_source` or leave it unmanaged and manage it again, the region,",
        "`on_delete`, values passed as Outputs, `retain_on_delete`, `ignore_changes`, a second resource for one",
        "account), out-of-band changes, `up`, `up --refresh`, `refresh`, `preview`, `destroy`, `destroy --target`,",
        "`up --target` (with and without the originals ledger's URN), `up --exclude`, a protected resource",
        "removed, the GitOps scripts (`pipelines/deploy`, `preview`, `drift-check`), injected faults, and",
        "interrupted runs with the recovery of [Interrupted runs](behaviour.md#interrupted-runs). After every step",
        "it checks the invariant (SendGrid equals the state, or a plain preview shows a change for the account;",
        "drift made out of band shows in `preview --refresh`), every original the state holds (each setting's and",
        "the ledger's) against the model's value from when the stack first took that field over (never a value",
        "the stack wrote), what each give-back did (a retained resource sends nothing), and convergence after",
        "each successful run; at the end `destroy --refresh` must give every account back. A violation fails the",
        "run with the shrunk sequence.",
        "",
        *STATEFUL_REPORTS,
        *STATEFUL_RUNS,
        f"Last long run: {figures['measured']}, seed {figures['seed']}, {figures['examples']} sequences of "
        f"{figures['steps_per_sequence']} steps requested, {figures['seconds']} s.",
        "",
    ]
    phases = figures.get("phases") or {}
    disturbed = figures.get("disturbed_sequences")
    out += _table(
        [
            "sequences run",
            "of them reaching a fault or an interruption",
            "steps run",
            "checks that needed a preview",
            "violations found (target 0)",
        ],
        [
            [
                figures["sequences"],
                "-" if disturbed is None else disturbed,
                figures["steps"],
                figures["preview_checks"],
                figures["violations"],
            ]
        ],
    )
    if phases:
        out += [
            "",
            "Faults and interruptions injected, per phase (a run that goes through several counts in each):",
            "",
        ]
        rows = []
        for phase in STATEFUL_PHASES:
            row = phases.get(phase) or {}
            interruptions = row.get("interruptions") or {}
            rows.append(
                [
                    phase,
                    row.get("fault_runs", 0),
                    row.get("faulted_requests", 0),
                    " / ".join(str(interruptions.get(k, 0)) for k in ("SIGINT", "two SIGINTs", "SIGKILL")),
                ]
            )
        out += _table(
            [
                "phase",
                "runs under an injected fault",
                "requests answered with a fault",
                "interrupted runs (SIGINT / two SIGINTs / SIGKILL)",
            ],
            rows,
        )
    if figures.get("failure"):
        out += ["", "The failing sequence, as Hypothesis printed it:", "", "```", figures["failure"], "```"]
    return [*out, ""]


def read_stateful() -> dict[str, Any] | None:
    if not STATEFUL_FIGURES.exists():
        return None
    return dict(json.loads(STATEFUL_FIGURES.read_text(encoding="utf-8")))


def replace_stateful_section(doc: str, figures: dict[str, Any] | None) -> str:
    """The document with its stateful section (up to the next `## ` heading) replaced, or put where a full
    render puts it (before *Secrets*)."""
    section = "\n".join(render_stateful(figures)) + "\n"
    start = doc.find(STATEFUL_HEADING)
    if start < 0:
        secrets = doc.find("\n## Secrets")
        if secrets < 0:
            return doc.rstrip("\n") + "\n\n" + section
        return doc[: secrets + 1] + section + doc[secrets + 1 :]
    end = doc.find("\n## ", start + len(STATEFUL_HEADING))
    return doc[:start] + section + (doc[end + 1 :] if end >= 0 else "")


def render(results: list[dict[str, Any]], exit_code: int, pulumi_version: str) -> str:
    tried = defined_cases()
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in results:
        by[item["suite"]].append(item)
    faults, bad, secret = by["faults"], by["bad_input"], by["secrets"]
    handler = [f for f in faults if f["level"] == "handler"]
    engine = [f for f in faults if f["level"] == "engine"]
    kinds = sorted({f["kind"] for f in handler}, key=lambda k: (not k[0].isdigit(), k))
    ops = ["create", "read", "update", "delete"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Reliability and security figures",
        "",
        f"Generated by `make reliability` on {now}, on a machine with {os.cpu_count()} cores, Pulumi {pulumi_version}.",
        "Each figure is recorded by a test that asserts it (`tests/reliability/`, `tests/e2e/test_reliability.py`,",
        "`tests/e2e/test_stateful.py`);",
        f"the run {'passed' if exit_code == 0 else f'FAILED (pytest exit {exit_code})'}.",
        "Regenerate with `make reliability`.",
        "",
        *INTRO,
        "## Summary",
        "",
    ]
    transient = [f for f in handler if f["mode"] == "transient"]
    persistent = [f for f in handler if f["mode"] == "persistent"]
    found = sum(s["found"] for s in secret)
    out += _table(
        ["what", "tried", "held"],
        [
            [
                "transient faults, handler level, every operation x kind x setting (succeeded, one effective change)",
                tried["handler"],
                sum(f["outcome"] == "survived" for f in transient),
            ],
            [
                "persistent faults, handler level, the same cases (clear error, truthful state, converged after)",
                tried["handler"],
                sum(f["outcome"].startswith("failed cleanly") for f in persistent),
            ],
            ["faults through the real engine, each setting", tried["engine"], len(engine)],
            [
                "bad inputs rejected at preview with zero requests",
                tried["bad_input"],
                sum(b["rejected"] and b["requests"] == 0 for b in bad),
            ],
            ["places audited for the API key (key found: must be 0)", len(secret), f"key found {found} times"],
            [
                "TLS: untrusted certificate refused, whatever the environment",
                tried["tls"],
                sum(t["outcome"] == "refused" for t in by["tls"]),
            ],
        ],
    )
    settings = tried["settings"]
    out += [
        "",
        "## Faults",
        "",
        f"Handler level: every fault kind against every operation of every setting ({', '.join(settings)}),",
        "transient (2 faults) and persistent (every attempt faults until cleared). A case holds when the",
        "managed fields end as expected and every other field of the setting keeps its value. ✓ = held.",
    ]
    cell = {(f.get("setting", "click"), f["kind"], f["op"], f["mode"]) for f in handler}
    for setting in settings:
        held = sum(1 for c in cell if c[0] == setting)
        out += ["", f"### {setting} ({held} of {2 * len(kinds) * len(ops)} held)", ""]
        out += _table(
            ["fault"] + [f"{op} (transient / persistent)" for op in ops],
            [
                [k]
                + [
                    " / ".join("✓" if (setting, k, op, m) in cell else "✗" for m in ("transient", "persistent"))
                    for op in ops
                ]
                for k in kinds
            ],
        )
    out += [
        "",
        "Through the real engine (a subset of the matrix, for every setting; the persistent case fails a",
        "destroy for one of two accounts, then converges):",
        "",
    ]
    order = {name: i for i, name in enumerate(settings)}
    out += _table(
        ["setting", "operation", "fault", "mode", "outcome"],
        [
            [f.get("setting", "click"), f["op"], f["kind"], f["mode"], f["outcome"]]
            for f in sorted(engine, key=lambda f: (order.get(f.get("setting", "click"), 99), f["mode"] != "transient"))
        ],
    )
    out += _error_examples(persistent, settings)
    for item in by["load"]:
        out += [
            "",
            "## Load",
            "",
            f"{item['subusers']} subusers in one stack, emulator limited to {item['limit_per_s']} requests/s: "
            f"`pulumi up` took {item['seconds']} s with {item['failures']} failures; {item['requests']} requests, "
            f"of which {item['rate_limited']} answered 429 and were retried after the reset; "
            f"{item['achieved_per_s']} successful requests/s. The emulator's state equals the desired state.",
        ]
    if by["interruption"]:
        out += ["", "## Interruption", ""]
        out += _table(
            [
                "signal",
                "recovery the user runs",
                "converged",
                "applied twice",
                "pending creates",
                "originals lost",
                "empty .attrs sidecar removed",
            ],
            [
                [
                    i["signal"],
                    f"`{i['recovery']}`",
                    i["converged"],
                    i["applied_twice"],
                    i["pending_creates"],
                    i["originals_lost"],
                    i.get("empty_sidecar_removed", False),
                ]
                for i in by["interruption"]
            ],
        )
        out += [
            "",
            "A kill during a checkpoint write can leave a `file://` backend's `<stack>.json.attrs` sidecar empty",
            "(`failed to load checkpoint: EOF`); the state file itself is written atomically and is intact, and",
            "deleting the empty sidecar ([Interrupted runs](behaviour.md#interrupted-runs)) restores it.",
            "After SIGKILL, a create killed between its PATCH and Pulumi's checkpoint is re-adopted; its",
            "`original_enabled` is then the new value (the setting itself is right and changed once).",
        ]
    out += [
        "",
        "## Bad input",
        "",
        "Each input is a `pulumi preview` through the real engine, which must fail with the expected message",
        "before any request: each setting resource's arguments (`check`: shared ones such as `enabled` and",
        "`on_behalf_of`, and each setting's own fields, e.g. subscription's `url` and footers, Google Analytics'",
        "utm parameters; an unknown argument is refused by the resource class), the stack config's keys",
        "(unknown keys in `sendgrid:` and the program's namespace, an API key in plaintext), the fleet (shapes,",
        "duplicate YAML keys, unquoted `accountId`s, an empty fleet without `manageNothing: true`), and the",
        "provider's settings. The message",
        "column is the line of the error that names the problem.",
        "",
    ]
    out += _table(
        ["input", "resource", "rejected at", "requests sent", "message"],
        [
            [
                b["case"],
                b.get("setting") or "the repository's program",
                b["rejected_at"] if b["rejected"] else "NOT REJECTED",
                b["requests"],
                f"`{b['message']}`",
            ]
            for b in bad
        ],
    )
    out += [
        "",
        *render_stateful(read_stateful()),
        "## Secrets",
        "",
        "A full lifecycle (preview, up, refresh, update, a 500, a reset, a 401, destroy) with",
        "the provider's debug log on and the key in `SENDGRID_API_KEY`. Places searched for the key:",
        "",
    ]
    out += _table(["place", "found"], [[s["place"], s["found"]] for s in secret])
    out += [
        "",
        "With the key in stack config (`pulumi config set --secret sendgrid:apiKey`), the Pulumi engine also",
        "records it, encrypted, in the default `pulumi-python` provider's inputs",
        "(see [Secrets](behaviour.md#secrets));",
        "`tests/e2e/test_lifecycle.py` pins that this is the only place.",
        "",
    ]
    return "\n".join(out)


def run_pytest(suites: list[str], results_file: Path) -> int:
    env = {
        **LONG_RUN,
        **os.environ,
        "RELIABILITY_RESULTS": str(results_file),
        "STATEFUL_FIGURES": str(STATEFUL_FIGURES),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites], cwd=ROOT, env=env, check=False
    ).returncode


def main(argv: list[str]) -> int:
    if argv == ["stateful"]:
        with tempfile.TemporaryDirectory() as tmp:
            code = run_pytest([STATEFUL_SUITE], Path(tmp) / "results.jsonl")
        doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Reliability and security figures\n"
        DOC.write_text(replace_stateful_section(doc, read_stateful()), encoding="utf-8")
        print(f"reliability: rewrote the stateful section of {DOC.relative_to(ROOT)} (pytest exit {code})")
        return code
    if argv:
        print("usage: python -m tools.reliability [stateful]", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        results_file = Path(tmp) / "results.jsonl"
        code = run_pytest(SUITES, results_file)
        lines = results_file.read_text().splitlines() if results_file.exists() else []
    results = [json.loads(line) for line in lines]
    try:
        version = run_pulumi(["version"], env=os.environ, timeout=60).stdout.strip()
    except (OSError, PipelineError):
        version = ""
    DOC.parent.mkdir(exist_ok=True)
    from tools.mutants import FIGURES, replace_section

    mutants = json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.exists() else None
    DOC.write_text(replace_section(render(results, code, version or "(not found)"), mutants), encoding="utf-8")
    print(f"reliability: wrote {DOC.relative_to(ROOT)} from {len(results)} results (pytest exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
