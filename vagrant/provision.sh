#!/usr/bin/env bash
# Provisioning of the iolens dev VM (and what CI runs to check it): the same set-up script as
# everywhere else, into a venv outside the synced folder, then `iolens doctor`.
# usage: provision.sh [REPO_DIR] [VENV_DIR]     env: IOLENS_BIN_DIR (where the `iolens` link
# goes, default /usr/local/bin; the test of this script points it into its own scratch dir)
set -euo pipefail
REPO=${1:-/iolens}
VENV=${2:-/opt/iolens-venv}
BIN_DIR=${IOLENS_BIN_DIR:-/usr/local/bin}
export DEBIAN_FRONTEND=noninteractive
command -v make >/dev/null || { apt-get update -qq; apt-get install -y -qq make git; }
bash "$REPO/.ci/setup.sh" "$VENV"
ln -sfn "$VENV/bin/iolens" "$BIN_DIR/iolens" 2>/dev/null || true
"$VENV/bin/iolens" doctor --quick
