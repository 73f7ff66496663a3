#!/usr/bin/env bash
# ansible-test sanity, offline. ansible-test needs the collection at a path ending in
# ansible_collections/compleat/cloud, so the tracked (and new, not ignored) files are synced into
# build/ansible-test/ansible_collections/compleat/cloud and tested there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$COMPLEAT_ROOT"
# COMPLEAT_SANITY_VENV: the venv whose ansible-test runs (scripts/compat.sh: the lowest ansible-core)
venv="${COMPLEAT_SANITY_VENV:-.venv}"
export PATH="$COMPLEAT_ROOT/$venv/bin:$PATH"
tree="build/ansible-test${COMPLEAT_SANITY_VENV:+-${venv#.venv-}}"

# Pre-seed the pip bootstrap script for every pip version this ansible-test may ask for.
seed_pip_bootstrap() {
  local cache=~/.ansible/test/cache versions v
  mkdir -p "$cache"
  # The pinned bootstrap pip versions are the "pip='X.Y'" defaults in ansible-test's requirements code.
  versions=$(grep -hoE "pip='[0-9.]+'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py \
    | grep -oE '[0-9.]+' | sort -u)
  [ -n "$versions" ] || die "cannot find ansible-test's bootstrap pip version"
  for v in $versions; do
    install -m 0644 scripts/ansible-test/get_pip_offline.py "$cache/get_pip_${v//./_}.py"
  done
}

sync_tree() {
  # A git repository of its own: otherwise ansible-test would list files through the outer
  # checkout, where build/ is ignored, and skip every target.
  local dest="$tree/ansible_collections/compleat/cloud"
  mkdir -p "$dest"
  git ls-files -co --exclude-standard -z > "$tree/files.lst"
  rsync -a --delete --exclude=/.git/ --exclude=/tests/output/ --from0 \
    --files-from="$tree/files.lst" ./ "$dest/"
  (
    cd "$dest"
    [ -d .git ] || git init -q
    # --files-from never deletes: drop files that left the checkout.
    git ls-files -co --exclude-standard -z | sort -z > ../../../files.have
    sort -z ../../../files.lst > ../../../files.want
    comm -z -23 ../../../files.have ../../../files.want | xargs -0 -r rm -f
    git add -A >/dev/null
  )
  echo "$dest"
}

seed_pip_bootstrap
dest=$(sync_tree)
cd "$dest"
ansible-test sanity --venv --python 3.11 --color no "$@"
