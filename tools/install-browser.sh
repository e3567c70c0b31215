#!/usr/bin/env bash
# Make sure a Chromium is on the machine for kaleido's static export and the real-browser test.
# Policy: use one that is already there (chromium, chromium-browser, google-chrome, or $BROWSER_PATH); else install
# Debian's `chromium` when apt-get can run without a password (root, or `sudo -n`); else print one line and go on:
# the tests that need a browser then skip and say why, and figures are written as HTML only.
set -u
for b in "${BROWSER_PATH:-}" chromium chromium-browser google-chrome google-chrome-stable; do
  if [ -n "$b" ] && command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "labkit: no Chromium found; install one (or set BROWSER_PATH) for PNG/SVG/PDF export and the browser test"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "labkit: no Chromium found; run 'sudo apt-get install chromium' for PNG/SVG/PDF export and the browser test"
  exit 0
fi
# One line per step, apt's own output kept in a log that is shown only when a step fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() {
  echo "labkit: $1"
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 5 "$log"
    echo "labkit: could not install chromium with apt-get; PNG/SVG/PDF export and the browser test will skip"
    exit 0
  fi
}
step "no Chromium found: updating apt's package lists (for figure export and the browser test; may take a minute)" \
  $SUDO apt-get update -q
step "installing Debian's chromium with apt-get (about 100 MB; may take a few minutes)" \
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
echo "labkit: chromium installed: $(chromium --version 2>/dev/null || echo chromium)"
exit 0
