#!/usr/bin/env bash
# TeamSystem Cloud CRM <-> Reviso (seed 000) against the Reviso emulator.
# Run from the repository root:  bash specs/teamsystem-reviso/try.sh
#
# Works on a copy of this folder under target/try/ (the sample files are
# rewritten by apply), starts `recon emulate reviso` on port 8701, runs and
# applies the companies spec and then the contacts spec (contacts need their
# companies' links), plans both again to show they are in sync, and stops
# the emulator on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=8701
SRC=specs/teamsystem-reviso
WORK=target/try/teamsystem-reviso

cargo build --quiet
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$SRC"/*.toml "$SRC"/*.json "$WORK"/

# Seed 42 and 50 records: the sample CRM data was written against them.
target/debug/recon emulate reviso --port "$PORT" --records 50 --seed 42 \
    >"$WORK/emulator.log" 2>&1 &
EMULATOR=$!
trap 'kill "$EMULATOR" 2>/dev/null; wait "$EMULATOR" 2>/dev/null || true' EXIT

# The emulator prints its credentials once it listens (give it 10 s).
for _ in $(seq 100); do
    grep -q 'agreement_grant=' "$WORK/emulator.log" && break
    kill -0 "$EMULATOR" 2>/dev/null || { cat "$WORK/emulator.log"; exit 1; }
    sleep 0.1
done
credential() { grep -o "$1=[^ ]*" "$WORK/emulator.log" | head -1 | cut -d= -f2; }
REVISO_APP_SECRET=$(credential app_secret)
REVISO_AGREEMENT_GRANT=$(credential agreement_grant)
if [ -z "$REVISO_APP_SECRET" ] || [ -z "$REVISO_AGREEMENT_GRANT" ]; then
    echo "the emulator did not start:" >&2
    cat "$WORK/emulator.log" >&2
    exit 1
fi
export REVISO_APP_SECRET REVISO_AGREEMENT_GRANT

recon() { timeout 300 target/debug/recon --home "$WORK" "$@"; }
latest_plan() { ls -d "$WORK/reports/$1"/*/ | tail -1; }
# `recon run` exits 2 when changes are pending: that is not a failure here.
run() { recon run "$WORK/$1.toml" || [ $? -eq 2 ]; }

for spec in companies contacts; do
    echo "== $spec: pull and plan"
    run "$spec"
    plan=$(latest_plan "ts-reviso-$spec")
    echo "== $spec: apply $plan"
    recon apply --yes "$plan"
done

echo "== again: only the rows that cannot be written are left (invalid)"
for spec in companies contacts; do
    run "$spec"
done

echo
echo "Review reports:"
for spec in companies contacts; do
    echo "  $(latest_plan "ts-reviso-$spec")report.html (first run: $(ls -d "$WORK/reports/ts-reviso-$spec"/*/ | head -1)report.html)"
done
echo "Files after apply: $WORK/crm_companies.json, $WORK/crm_contacts.json, $WORK/reviso_contacts.json"
