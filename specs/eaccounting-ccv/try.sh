#!/usr/bin/env bash
# Try the Visma eAccounting -> CCV SalesPOS scenario against the
# eAccounting emulator.
#
#   bash specs/eaccounting-ccv/try.sh            # pull and plan every spec
#   bash specs/eaccounting-ccv/try.sh --apply    # ... and apply each plan
#
# Run from the repository root. The specs and CCV sample files are copied to
# a new scratch folder first (under $TMPDIR or /tmp, kept afterwards), so
# applying never rewrites the shipped files. The emulator serves eAccounting
# on 127.0.0.1:8720 (the port the specs name), seed 42 and 50 records per
# entity (the SKUs and orders the CCV files refer to), and is stopped on exit.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 1
HERE=specs/eaccounting-ccv
PORT=8720
APPLY=0
for arg in "$@"; do
  case "$arg" in
    --apply) APPLY=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/recon-eaccounting-ccv.XXXXXX") || exit 1
cp "$HERE"/*.toml "$HERE"/*.json "$WORK"/
LOG=$WORK/emulator.log

EMULATE=("$RECON" emulate eaccounting --port "$PORT" --records 50 --seed 42)
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
  grep -q "refresh_token=" "$LOG" 2>/dev/null && break
  if ! kill -0 "$EMULATOR" 2>/dev/null; then
    echo "the emulator stopped (is port $PORT taken?):" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.2
done
grep -q "refresh_token=" "$LOG" || { echo "the emulator did not start in 20 s" >&2; cat "$LOG" >&2; exit 1; }
[ -n "$ENV_FILE" ] && for _ in $(seq 1 25); do [ -s "$ENV_FILE" ] && break; sleep 0.2; done

# A credential by the emulator's name for it (`client_id`), from the env
# file (EACCOUNTING_CLIENT_ID=... or client_id=...) or the printed line.
cred() {
  cat ${ENV_FILE:+"$ENV_FILE"} "$LOG" 2>/dev/null |
    grep -oiE "(^|[[:space:]_])$1=[^[:space:]]+" | head -n 1 | sed 's/^.*=//'
}
EACC_CLIENT_ID=$(cred client_id)
EACC_CLIENT_SECRET=$(cred client_secret)
EACC_REFRESH_TOKEN=$(cred refresh_token)
export EACC_CLIENT_ID EACC_CLIENT_SECRET EACC_REFRESH_TOKEN
[ -n "$EACC_CLIENT_ID" ] && [ -n "$EACC_CLIENT_SECRET" ] && [ -n "$EACC_REFRESH_TOKEN" ] ||
  { echo "no eAccounting credentials in the emulator's output" >&2; exit 1; }

# What people do in eAccounting's UI (admin endpoint, as user edits): a long
# text in two articles' notes, and sales orders reserving stock of two
# articles. The ids are seed 42's articles P-00013, P-00003, P-00001, P-00020.
if command -v curl >/dev/null; then
  ADMIN=http://127.0.0.1:$PORT/_admin/eaccounting/articles
  patch() { curl -s -o /dev/null -X PATCH "$ADMIN/$1" -H 'Content-Type: application/json' -d "$2"; }
  NOTES='{"Notes":"Descrizione lunga scritta in eAccounting: arriva in CCV solo alla creazione."}'
  patch 47771254-1171-4c52-b367-95f8ee0e3d44 "$NOTES"
  patch e4d4c539-af57-412b-86e8-438dd8cb1b2d "$NOTES"
  patch 0a161844-c1ff-4a10-95f4-569e6080da76 '{"StockBalanceReserved":5}'
  patch 0053f22a-5d71-4d5d-b57c-7bf139759649 '{"StockBalanceReserved":20}'
  echo "(set notes on P-00013 and P-00003, reserved 5 of P-00001 and 20 of P-00020)"
fi

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
    # Invalid rows are never written; apply says so and exits 0.
    r apply --yes "$plan" || { echo "recon apply $plan failed" >&2; exit 1; }
  fi
}

# Dependency order: products first, then the stock and orders of them.
run_spec products.toml eacc-ccv-products
run_spec stock.toml eacc-ccv-stock
run_spec orders.toml eacc-ccv-orders

echo
echo "Reports (open in a browser):"
printf '  %s\n' "${REPORTS[@]}"
echo "Scratch folder (specs, CCV files, snapshots, reports): $WORK"
[ "$APPLY" = 1 ] || echo "Plans only: run again with --apply to write them (stock plans products CCV lacks until products is applied)."
