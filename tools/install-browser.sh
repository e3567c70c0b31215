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
echo "labkit: installing Debian's chromium (for figure export and the browser test)"
$SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
  || echo "labkit: could not install chromium with apt-get; PNG/SVG/PDF export and the browser test will skip"
exit 0
