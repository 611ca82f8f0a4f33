#!/usr/bin/env bash
# Builds the image the docker example runs: FROM scratch, holding only a static skyfleet
# binary (CGO_ENABLED=0). No registry is involved; the image stays on the local engine.
#
#   examples/autoscaling-docker/build-image.sh [IMAGE:TAG]     default skyfleet-demo:local
#   SKYFLEET_BIN=/path/to/static/skyfleet build-image.sh        use that binary, no go build
set -euo pipefail
image="${1:-skyfleet-demo:local}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

if [ -n "${SKYFLEET_BIN:-}" ]; then
  # A static binary built already (the end-to-end tests pass theirs).
  cp "$SKYFLEET_BIN" "$ctx/skyfleet"
else
  echo "building a static skyfleet binary"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$ctx/skyfleet" ./cmd/skyfleet)
fi

cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY skyfleet /skyfleet
ENTRYPOINT ["/skyfleet"]
DOCKERFILE

echo "docker build -t $image"
docker build -q -t "$image" "$ctx"
