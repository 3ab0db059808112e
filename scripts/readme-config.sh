#!/usr/bin/env bash
# Replaces the README's configuration reference (between the config-reference markers) with the
# output of `agui-server config-reference`, which is generated from the config types.
set -euo pipefail
cd "$(dirname "$0")/.."
reference=$(target/debug/agui-server config-reference)
python3 - "$reference" <<'PY'
import re, sys
readme = open("README.md").read()
start, end = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
new = readme[: readme.index(start) + len(start)] + "\n" + sys.argv[1].strip() + "\n" + readme[readme.index(end):]
open("README.md", "w").write(new)
PY
echo "README.md configuration reference updated"
