#!/usr/bin/env bash
# Regenerates the `--help` blocks of docs/operators.md from the binary: each "### `boltensor …`" heading is
# followed by a ```text block holding that command's help, replaced here by what the binary prints now.
#
#   scripts/cli-help.sh            # rewrite docs/operators.md
#   scripts/cli-help.sh --check    # exit 1 if it is out of date
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/boltensor/target}
cargo build -q --bin boltensor
bin=$CARGO_TARGET_DIR/debug/boltensor
doc=docs/operators.md
out=$(mktemp)
python3 - "$bin" "$doc" "$out" <<'PY'
import re, subprocess, sys
binary, doc, out = sys.argv[1:]
text = open(doc).read()
def block(m):
    words = m.group(1).split()[1:]
    help_text = subprocess.run([binary, *words, "--help"], check=True, capture_output=True, text=True).stdout
    return f"### `{m.group(1)}`\n\n```text\n{help_text.rstrip()}\n```"
new = re.sub(r"### `(boltensor [^`]+)`\n\n```text\n.*?\n```", block, text, flags=re.S)
open(out, "w").write(new)
PY
if [ "${1:-}" = "--check" ]; then
    if ! diff -u "$doc" "$out"; then
        echo "docs/operators.md is out of date: run scripts/cli-help.sh" >&2
        exit 1
    fi
else
    mv "$out" "$doc"
fi
rm -f "$out"
