#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (web/e2e), idempotently. Never downloads a
# browser build of its own (playwright-core drives the system Chromium at /usr/bin/chromium).
# Without root it changes nothing and says what to do; the browser tests then print SKIP, or FAIL
# when AGUI_REQUIRE_BROWSER=1.
set -euo pipefail

CHROMIUM=${AGUI_CHROMIUM:-/usr/bin/chromium}
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "web: installing Debian's chromium package for the browser tests…" >&2
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
  echo "web: apt-get could not install chromium; the browser tests will be skipped (or fail with AGUI_REQUIRE_BROWSER=1)." >&2
  exit 0
fi
cat >&2 <<MSG
web: $CHROMIUM is missing, so the browser tests will be skipped.
     Install it with:   sudo apt-get install -y chromium      (Debian/Ubuntu)
     or point AGUI_CHROMIUM at an existing Chromium/Chrome binary.
     (AGUI_REQUIRE_BROWSER=1 turns the skip into a failure.)
MSG
exit 0
