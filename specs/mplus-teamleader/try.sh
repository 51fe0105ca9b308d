#!/usr/bin/env bash
# MplusKASSA <-> Teamleader (seed 002) against the Teamleader emulator.
# Run from the repository root:  bash specs/mplus-teamleader/try.sh
#
# Works on a copy of this folder under target/try/ (apply rewrites the
# sample files), starts `recon emulate teamleader` on port 8703, runs and
# applies every spec in dependency order (categories, products, customers,
# then orders), plans them all again to show they are in sync, and stops
# the emulator on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=8703
SRC=specs/mplus-teamleader
WORK=target/try/mplus-teamleader
# name of the spec file : name inside it, in the order the seed gives
# (categories and products before the orders that need them, customers
# before the orders that name them).
SPECS="categories:mplus-tl-categories
products:mplus-tl-products
customers_companies:mplus-tl-customers-companies
customers_persons:mplus-tl-customers-persons
orders_companies:mplus-tl-orders-companies
orders_persons:mplus-tl-orders-persons
orders_to_teamleader:mplus-tl-orders-to-teamleader"

cargo build --quiet
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$SRC"/*.toml "$SRC"/*.json "$WORK"/

# Seed 42 and 50 records: the sample files were written against them.
target/debug/recon emulate teamleader --port "$PORT" --records 50 --seed 42 \
    >"$WORK/emulator.log" 2>&1 &
EMULATOR=$!
trap 'kill "$EMULATOR" 2>/dev/null; wait "$EMULATOR" 2>/dev/null || true' EXIT

# The emulator prints its credentials once it listens (give it 10 s).
for _ in $(seq 100); do
    grep -q 'refresh_token=' "$WORK/emulator.log" && break
    kill -0 "$EMULATOR" 2>/dev/null || { cat "$WORK/emulator.log"; exit 1; }
    sleep 0.1
done
credential() { grep -o " $1=[^ ]*" "$WORK/emulator.log" | head -1 | cut -d= -f2; }
TEAMLEADER_CLIENT_ID=$(credential client_id)
TEAMLEADER_CLIENT_SECRET=$(credential client_secret)
TEAMLEADER_REFRESH_TOKEN=$(credential refresh_token)
if [ -z "$TEAMLEADER_CLIENT_ID" ] || [ -z "$TEAMLEADER_REFRESH_TOKEN" ]; then
    echo "the emulator did not start:" >&2
    cat "$WORK/emulator.log" >&2
    exit 1
fi
export TEAMLEADER_CLIENT_ID TEAMLEADER_CLIENT_SECRET TEAMLEADER_REFRESH_TOKEN

recon() { timeout 300 target/debug/recon --home "$WORK" "$@"; }
latest_plan() { ls -d "$WORK/reports/$1"/*/ | tail -1; }
# `recon run` exits 2 when changes are pending: that is not a failure here.
run() { recon run "$WORK/$1.toml" || [ $? -eq 2 ]; }

while IFS=: read -r file name; do
    echo "== $file: pull and plan"
    run "$file"
    plan=$(latest_plan "$name")
    echo "== $file: apply $plan"
    recon apply --yes "$plan"
done <<<"$SPECS"

echo "== again: only the rows that cannot be written are left (invalid)"
while IFS=: read -r file _; do
    run "$file"
done <<<"$SPECS"

echo
echo "Review reports (first run, then after apply):"
while IFS=: read -r _ name; do
    echo "  $(ls -d "$WORK/reports/$name"/*/ | head -1)report.html"
    echo "  $(latest_plan "$name")report.html"
done <<<"$SPECS"
echo "Files after apply: $WORK/*.json"
