#!/usr/bin/env bash
# Build (or reuse) every cached base image: the podman container image and, when its builder
# is present, the QEMU VM image. Each builder caches by recipe hash and is a no-op when current.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$HERE/../lib.sh"

"$HERE/build-container-image.sh"
if [ -x "$HERE/build-vm-image.sh" ]; then
  "$HERE/build-vm-image.sh"
else
  log "no executable scripts/images/build-vm-image.sh: skipping the VM image"
fi
"$HERE/build-tenant-image.sh"
COMPLEAT_TENANT_KERNEL_FLAVOUR=cloud "$HERE/build-tenant-image.sh"
