#!/bin/sh
# Builds the LedgerMQ container image: static binaries of broker and mqctl
# built here (CGO_ENABLED=0), then the Dockerfile at the repository's root,
# FROM scratch, around them. No base image is pulled.
#
#   deploy/build-image.sh [TAG]          (default ledgermq:latest)
#
# GOARCH may be set to build for another architecture (e.g. GOARCH=arm64).
set -eu
tag="${1:-ledgermq:latest}"
root="$(cd "$(dirname "$0")/.." && pwd)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin" "$ctx/data"
cd "$root"
version="$(git describe --always --dirty 2>/dev/null || echo unknown)"
for cmd in broker mqctl; do
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/bin/$cmd" "./cmd/$cmd"
done
cp Dockerfile "$ctx/Dockerfile"
docker build -q --label "org.opencontainers.image.version=$version" \
	--label "org.opencontainers.image.source=https://github.com/ledgermq/ledgermq" \
	-t "$tag" "$ctx" >/dev/null
echo "built $tag ($version)"
