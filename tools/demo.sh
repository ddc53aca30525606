#!/usr/bin/env bash
# make demo: `pulumi up` of __main__.py, stack `dev`, against the local emulator, with a local
# file state backend in .pulumi-state/ (git-ignored). No SendGrid or Pulumi Cloud account.
# The emulator keeps its accounts in .pulumi-state/emulator.json, so a second run changes nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.pulumi-state"
mkdir -p "$state"
export PULUMI_BACKEND_URL="file://$state" PULUMI_HOME="$state/home" PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_CONFIG_PASSPHRASE="demo-passphrase-not-a-secret"  # matches Pulumi.dev.yaml's encryptionsalt
unset SENDGRID_REGION SENDGRID_RETRY_BUDGET SENDGRID_REQUEST_TIMEOUT
export SENDGRID_API_KEY="SG.emulator-local-dev-key"  # the emulator's default key, not a real one

coproc EMULATOR { exec "$root/.venv/bin/python" -u -m pulumi_sendgrid_tracking.emulator --seed tools/demo-seed.json --state-file "$state/emulator.json"; }
emulator_pid=$EMULATOR_PID
trap 'kill "$emulator_pid" 2>/dev/null; wait "$emulator_pid" 2>/dev/null || true' EXIT
read -r base_url <&"${EMULATOR[0]}"
read -r _ eu_base_url <&"${EMULATOR[0]}"
export SENDGRID_BASE_URL="$base_url" SENDGRID_EU_BASE_URL="$eu_base_url"
echo "demo: emulator at $base_url (EU at $eu_base_url); state in $state"

# Each pulumi command under a timeout (as in pipelines/common.py): a stuck one ends the demo, named.
bounded() {
  local limit=$1; shift
  timeout --kill-after=5 "$limit" pulumi "$@" || {
    status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      echo "demo: \`pulumi $*\` did not finish in $limit s, so it was stopped; check .pulumi-state/ and run make demo again" >&2
    fi
    return "$status"
  }
}
bounded 300 stack select --create dev --non-interactive >/dev/null
bounded 3600 up --yes --non-interactive --suppress-progress
echo
echo "demo: stack outputs"
bounded 300 stack output --json
echo
echo "demo: the emulator's tracking settings after the run (enabled or not; stack dev manages the parent,"
echo "      alice, bob and carol; the others are stack prod's: pipelines/deploy --emulator --stack prod)"
"$root/.venv/bin/python" - "$base_url" <<'PY'
import sys
from pulumi_sendgrid_tracking.emulator import AdminClient
state = AdminClient(sys.argv[1]).state()
kinds = ("click", "open", "subscription", "google_analytics")
print(f"  {'':6} {'':17} " + " ".join(f"{kind:13}" for kind in kinds).rstrip())
for world, data in state.items():
    accounts = [("parent", data["parent"])] + list(data["subusers"].items())
    accounts += [(f"account-id {account_id}", customer) for account_id, customer in data["customers"].items()]
    for name, settings in accounts:
        print(f"  {world:6} {name:17} " + " ".join(f"{settings[kind]['enabled']!s:13}" for kind in kinds).rstrip())
PY
