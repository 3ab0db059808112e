#!/usr/bin/env bash
# Installs the benchmark's peers into local environments, idempotently (bench/README.md):
#   - bench/peers/.venv: the Python and AG2 peers, pinned in bench/peers/requirements.txt (pip);
#   - bench/peers/node/node_modules: the Node peer, from the committed package-lock.json (npm ci).
# Nothing is downloaded except from the package registries, and only when the pins changed since
# the last install (a stamp file holds a hash of the pin file). Nothing is fetched at run time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
requirements="$here/requirements.txt"
node_dir="$here/node"

die() {
	echo "bench/peers/install.sh: $*" >&2
	exit 1
}

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# --- Python (+ AG2) ---------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is not installed (the Python and AG2 peers need it; apt-get install python3 python3-venv)"
py_stamp="$venv/.installed"
py_want="$(hash_of "$requirements")"
if [[ -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_want" && -x "$venv/bin/python" ]]; then
	echo "peers: Python venv is up to date ($venv)"
else
	echo "peers: installing the Python and AG2 peers into $venv …"
	if [[ ! -x "$venv/bin/python" ]]; then
		python3 -m venv "$venv" ||
			die "cannot create a venv (on Debian: apt-get install python3-venv)"
	fi
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
		-r "$requirements" ||
		die "pip could not install $requirements (see the output above)"
	# A quick import check, so a broken install fails here and not in the middle of a run.
	"$venv/bin/python" - <<'EOF' || die "the Python peers' packages do not import (see above)"
import ag_ui.core, ag_ui.encoder, fastapi, uvicorn, jwt, uvloop, httptools  # noqa: F401
from ag2 import Agent  # noqa: F401
from ag2.ag_ui import AGUIStream  # noqa: F401
EOF
	echo "$py_want" >"$py_stamp"
fi

# --- Node -------------------------------------------------------------------------------------
command -v npm >/dev/null || die "npm is not installed (the Node peer needs Node 20 and npm)"
node_stamp="$node_dir/node_modules/.installed"
node_want="$(hash_of "$node_dir/package.json" "$node_dir/package-lock.json")"
if [[ -f "$node_stamp" && "$(cat "$node_stamp")" == "$node_want" ]]; then
	echo "peers: Node packages are up to date ($node_dir/node_modules)"
else
	echo "peers: installing the Node peer's packages (npm ci) …"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
		die "npm ci failed in $node_dir"
	echo "$node_want" >"$node_stamp"
fi
