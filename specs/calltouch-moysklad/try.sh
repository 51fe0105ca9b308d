#!/usr/bin/env bash
# Try the Calltouch <-> MoySklad scenario against the MoySklad emulator.
#
#   bash specs/calltouch-moysklad/try.sh              # pull and plan every spec
#   bash specs/calltouch-moysklad/try.sh --apply      # ... and apply each plan
#   bash specs/calltouch-moysklad/try.sh --retailcrm  # the retailCRM variant
#
# Run from the repository root. The specs and sample files are copied to a
# new scratch folder first (under $TMPDIR or /tmp, kept afterwards), so
# applying never rewrites the shipped files. The emulator serves MoySklad
# (or retailCRM) on 127.0.0.1:8710 (the port the specs name), seed 42 and 50
# records per entity (the records the sample leads refer to), and is
# stopped on exit.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 1
HERE=specs/calltouch-moysklad
PORT=8710
APPLY=0
SYSTEM=moysklad
for arg in "$@"; do
  case "$arg" in
    --apply) APPLY=1 ;;
    --retailcrm) SYSTEM=retailcrm ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg (try --help)" >&2; exit 1 ;;
  esac
done

# Every step is bounded: a stuck step fails the script instead of hanging it.
bounded() {
  if command -v timeout >/dev/null; then timeout 300 "$@"; else "$@"; fi
}

echo "building recon (first time: several minutes)..."
bounded cargo build --quiet || exit 1
RECON=$PWD/target/debug/recon

WORK=$(mktemp -d "${TMPDIR:-/tmp}/recon-calltouch-moysklad.XXXXXX") || exit 1
cp "$HERE"/*.toml "$HERE"/*.json "$WORK"/
mkdir -p "$WORK/retailcrm"
cp "$HERE"/retailcrm/*.toml "$HERE"/retailcrm/*.json "$WORK/retailcrm/"
LOG=$WORK/emulator.log

EMULATE=("$RECON" emulate "$SYSTEM" --port "$PORT" --records 50 --seed 42)
# Newer builds can write the credentials as NAME=value lines to a file.
ENV_FILE=
if "$RECON" emulate --help | grep -q -- '--env-file'; then
  ENV_FILE=$WORK/emulator.env
  EMULATE+=(--env-file "$ENV_FILE")
fi
"${EMULATE[@]}" >"$LOG" 2>&1 &
EMULATOR=$!
stop() { kill "$EMULATOR" 2>/dev/null; wait "$EMULATOR" 2>/dev/null; }
trap stop EXIT
trap 'exit 130' INT TERM

# Wait (at most 20 s) until it serves and has printed its credentials.
for _ in $(seq 1 100); do
  grep -q "token=" "$LOG" 2>/dev/null && break
  if ! kill -0 "$EMULATOR" 2>/dev/null; then
    echo "the emulator stopped (is port $PORT taken?):" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.2
done
grep -q "token=" "$LOG" || { echo "the emulator did not start in 20 s" >&2; cat "$LOG" >&2; exit 1; }
[ -n "$ENV_FILE" ] && for _ in $(seq 1 25); do [ -s "$ENV_FILE" ] && break; sleep 0.2; done

# A credential by the emulator's name for it (`token`), from the env file
# (MOYSKLAD_TOKEN=... or token=...) or the printed `token=...` line.
cred() {
  cat ${ENV_FILE:+"$ENV_FILE"} "$LOG" 2>/dev/null |
    grep -oiE "(^|[[:space:]_])$1=[^[:space:]]+" | head -n 1 | sed 's/^.*=//'
}
TOKEN=$(cred token)
[ -n "$TOKEN" ] || { echo "no $SYSTEM token in the emulator's output" >&2; exit 1; }
# The names the specs read: the MoySklad token, the retailCRM API key.
if [ "$SYSTEM" = moysklad ]; then export MOYSKLAD_TOKEN=$TOKEN; else export RETAILCRM_API_KEY=$TOKEN; fi

r() { bounded "$RECON" --home "$WORK" "$@"; }

# Run a spec (pull + plan); exit 0 (in sync) and 2 (changes pending) are fine.
REPORTS=()
run_spec() {
  local file=$1 name=$2
  echo
  echo "== $name ($file)"
  r run "$WORK/$file"
  local code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
    echo "recon run $file failed ($code)" >&2
    exit 1
  fi
  local plan
  plan=$(ls -d "$WORK/reports/$name"/*/ | sort | tail -n 1)
  REPORTS+=("$name: ${plan}report.html")
  if [ "$APPLY" = 1 ] && [ "$code" = 2 ]; then
    r apply --yes "$plan" || { echo "recon apply $plan failed" >&2; exit 1; }
  fi
}

# The manager's part (with --apply): complete and pay the order of lead
# call-5001 through the admin endpoint, as a user edit, so that its deal
# has something to follow. Needs curl and python3; skipped without them.
complete_first_order() {
  [ "$APPLY" = 1 ] && command -v curl >/dev/null && command -v python3 >/dev/null || return 0
  local base=http://127.0.0.1:$PORT entity=customerorder key=externalCode body id
  [ "$SYSTEM" = retailcrm ] && entity=orders && key=externalId
  id=$(curl -s "$base/_admin/state?system=$SYSTEM&entity=$entity" | python3 -c '
import json, sys
system, entity, key = sys.argv[1:4]
for o in json.load(sys.stdin)[system][entity]:
    if o.get(key) == "call-5001":
        print(o["id"])' "$SYSTEM" "$entity" "$key")
  [ -n "$id" ] || return 0
  if [ "$SYSTEM" = moysklad ]; then
    local state=$base/moysklad/api/remap/1.2/entity/customerorder/metadata/states/f8639b0a-7aa9-4ead-be3c-7752c0f7e065
    body="{\"state\":{\"meta\":{\"href\":\"$state\"}},\"positions\":[{\"quantity\":2,\"price\":125000}],\"payedSum\":250000}"
  else
    body='{"status":"complete","items":[{"quantity":2,"initialPrice":1250}],"prepaySum":2500}'
  fi
  curl -s -o /dev/null -X PATCH "$base/_admin/$SYSTEM/$entity/$id" -H 'Content-Type: application/json' -d "$body"
  echo
  echo "(completed the $SYSTEM order of lead call-5001, paid 2500.00)"
}

# Dependency order: counterparties (customers) before the orders that
# reference them; orders and deals before the status that flows back.
if [ "$SYSTEM" = moysklad ]; then
  run_spec counterparty.toml ct-ms-counterparty
  run_spec order.toml ct-ms-order
  run_spec deal.toml ct-deal
  complete_first_order
  run_spec deal-status.toml ms-ct-deal-status
else
  run_spec retailcrm/customer.toml ct-rc-customer
  run_spec retailcrm/order.toml ct-rc-order
  run_spec retailcrm/deal.toml ct-deal-rc
  complete_first_order
  run_spec retailcrm/deal-status.toml rc-ct-deal-status
fi

echo
echo "Reports (open in a browser):"
printf '  %s\n' "${REPORTS[@]}"
echo "Scratch folder (specs, Calltouch files, snapshots, reports): $WORK"
[ "$APPLY" = 1 ] || echo "Plans only: run again with --apply to write them (the order plan needs the counterparties applied first)."
