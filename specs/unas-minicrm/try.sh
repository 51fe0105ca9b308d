#!/usr/bin/env bash
# UNAS webshop -> MiniCRM orders (seed 001). Both sides are files, so no
# emulator is needed. Run from the repository root:
#   bash specs/unas-minicrm/try.sh
#
# Works on a copy of this folder under target/try/ (apply rewrites the
# MiniCRM file), runs and applies the orders spec, then plans again.
set -euo pipefail
cd "$(dirname "$0")/../.."

SRC=specs/unas-minicrm
WORK=target/try/unas-minicrm

cargo build --quiet
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$SRC"/*.toml "$SRC"/*.json "$WORK"/

recon() { timeout 300 target/debug/recon --home "$WORK" "$@"; }
latest_plan() { ls -d "$WORK/reports/unas-minicrm-orders"/*/ | tail -1; }
# `recon run` exits 2 when changes are pending: that is not a failure here.
run() { recon run "$WORK/orders.toml" || [ $? -eq 2 ]; }

echo "== orders: pull and plan"
run
first=$(latest_plan)
echo "== orders: apply $first"
recon apply --yes "$first"
echo "== again: only the orders whose status the map lacks are left (invalid)"
run

echo
echo "Review report: ${first}report.html"
echo "After apply:   $(latest_plan)report.html"
echo "MiniCRM cards: $WORK/minicrm_orders.json"
