#!/usr/bin/env bash
# iolens set-up for Debian/Ubuntu, run as root. Idempotent: safe to run again.
#
# What it does (each step is skipped when already done):
#   1. apt: python3-bpfcc (BCC's Python bindings; NOT PyPI's unrelated `bcc`), libbpfcc,
#      bpfcc-tools, kernel headers, iproute2 (tests use netns/tc), strace (benchmarks).
#   2. kernel headers for the running kernel; when the distribution has none, the nearest
#      Debian headers are linked at /lib/modules/$(uname -r)/{build,source} (with a warning).
#   3. tracefs mounted at /sys/kernel/tracing if missing.
#   4. a venv (.venv by default) that sees the system `bcc` package through a symlink of just
#      that package, and nothing else of the system site-packages; iolens installed editable.
#
# Usage: .ci/setup.sh [VENV_DIR]        env: IOLENS_PYTHON (interpreter for the venv),
#                                            IOLENS_EXTRAS (pip extras, default "test")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$ROOT/.venv}
EXTRAS=${IOLENS_EXTRAS:-test}
say() { printf '[setup] %s\n' "$*" >&2; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: must run as root (apt, /lib/modules links, tracefs)" >&2; exit 77
fi
export DEBIAN_FRONTEND=noninteractive

# --- 1. packages -----------------------------------------------------------------------------
KV=$(uname -r)
pkgs=(python3-bpfcc libbpfcc bpfcc-tools iproute2 strace python3-venv bpftool)
# Only the test suite needs these: a browser for the HTML report test, fio for the replica
# round trip (iolens replay-config), Vagrant to validate the dev VM's Vagrantfile (installed
# without its recommends: no hypervisor is wanted here).
test_pkgs=(chromium fio)
case ",$EXTRAS," in *,test,*) pkgs+=("${test_pkgs[@]}") ;; esac
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
want_vagrant=0
case ",$EXTRAS," in *,test,*) dpkg -s vagrant >/dev/null 2>&1 || want_vagrant=1 ;; esac
need_headers=0
[ -e "/lib/modules/$KV/build/include" ] || need_headers=1
if [ ${#missing[@]} -gt 0 ] || [ $need_headers = 1 ] || [ $want_vagrant = 1 ]; then
  say "apt-get update"
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ $want_vagrant = 1 ]; then
  say "installing vagrant (no recommends)"
  apt-get install -y -qq --no-install-recommends vagrant >/dev/null || warn "vagrant not installable"
fi

# --- 2. kernel headers -----------------------------------------------------------------------
if [ $need_headers = 1 ]; then
  if apt-get install -y -qq "linux-headers-$KV" >/dev/null 2>&1; then
    say "installed linux-headers-$KV"
  else
    # No headers packaged for this kernel: link the distribution's nearest ones. Tracepoint
    # programs only need the generic headers; iolens never reads kernel structs through them.
    dpkg -s linux-headers-amd64 >/dev/null 2>&1 || apt-get install -y -qq linux-headers-amd64 >/dev/null \
      || apt-get install -y -qq linux-headers-generic >/dev/null || true
    HDR=$(ls -d /usr/src/linux-headers-*-amd64 /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -n1 || true)
    if [ -z "$HDR" ]; then
      warn "no kernel headers found for $KV and none installable; BPF compilation will fail"
    else
      COMMON=${HDR%-amd64}-common
      [ -d "$COMMON" ] || COMMON=$HDR
      mkdir -p "/lib/modules/$KV"
      ln -sfn "$HDR" "/lib/modules/$KV/build"
      ln -sfn "$COMMON" "/lib/modules/$KV/source"
      warn "no headers packaged for kernel $KV: linked $(basename "$HDR") as build/source." \
           "Tracepoint probes work with these; struct layouts may differ (iolens does not rely on them)."
    fi
  fi
fi

# --- 3. tracefs --------------------------------------------------------------------------------
if ! [ -e /sys/kernel/tracing/events ] && ! [ -e /sys/kernel/debug/tracing/events ]; then
  say "mounting tracefs"
  mount -t tracefs nodev /sys/kernel/tracing || warn "could not mount tracefs"
fi

# --- 4. venv -----------------------------------------------------------------------------------
PY=${IOLENS_PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
if ! [ -x "$VENV/bin/python" ]; then
  say "creating venv $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
SP=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BCC_SRC=$(/usr/bin/python3 -c 'import bcc, os; print(os.path.dirname(bcc.__file__))' 2>/dev/null || echo /usr/lib/python3/dist-packages/bcc)
ln -sfn "$BCC_SRC" "$SP/bcc"
stamp="$VENV/.iolens-deps-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)-$EXTRAS"
if ! [ -e "$stamp" ]; then
  say "pip install -e .[$EXTRAS]"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$EXTRAS]"
  rm -f "$VENV"/.iolens-deps-*; touch "$stamp"
fi
"$VENV/bin/python" -W ignore -c 'import bcc' || { warn "bcc not importable from the venv"; exit 1; }
say "ready: $VENV/bin/iolens"
