#!/usr/bin/env bash
# Renders a report.html in headless Chromium and saves screenshot.png beside it; fails if
# Chromium is missing, renders nothing, or the page comes out blank.
#   tests/scenario/screenshot.sh reports/100_orders/report.html
set -euo pipefail
html="$1"
png="$(dirname "$html")/screenshot.png"
[ -f "$html" ] || { echo "no report at $html"; exit 1; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium is not installed (scripts/test installs it)"; exit 1; }
rm -f "$png"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# No background networking: the machine's network is closed to Chromium's own connections.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --disable-background-networking --disable-component-update --disable-sync --no-first-run --disable-quic \
  --window-size=1100,2600 --screenshot="$png" "file://$(realpath "$html")" >/dev/null 2>&1 || true
[ -s "$png" ] || { echo "chromium wrote no screenshot"; exit 1; }
[ "$(head -c 4 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e47" ] || { echo "$png is not a PNG"; exit 1; }
size=$(stat -c %s "$png")
# A blank 1100x2600 page compresses to a few kB; the report's tables and charts do not.
[ "$size" -gt 40000 ] || { echo "screenshot is only $size bytes: a blank page?"; exit 1; }
echo "screenshot: $png ($size bytes)"
