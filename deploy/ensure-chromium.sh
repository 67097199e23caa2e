#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium, the browser tests/web drive with Playwright
# (Playwright's own browser download is never used). Idempotent and instant when it is there;
# installing needs root (or sudo) and Debian's package mirrors.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then exit 0; fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "ensure-chromium: chromium is not installed; installing it from Debian's packages" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
