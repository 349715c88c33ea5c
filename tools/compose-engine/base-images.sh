#!/usr/bin/env bash
# Stand-in base images for the compose engine test, for an engine that cannot pull from Docker Hub:
# a minimal Debian bookworm root file system (debootstrap, from the Debian mirror apt uses) with redis-server,
# this machine's Node 20 (node and npm, copied: Debian's own nodejs is 18), a `node` user of uid 1000 (as in the
# official node images, which the Dockerfile's `USER node` relies on) and this machine's CA bundle (with
# NODE_EXTRA_CA_CERTS, for `npm ci` inside the build). One `docker import`, tagged as both names the user's files
# use: node:20-bookworm-slim (the Dockerfile's NODE_IMAGE) and redis:7-alpine (docker-compose.yml).
# A tag that already exists is reused, whatever it holds (a real image pulled from Docker Hub is fine too).
#
#   tools/compose-engine/base-images.sh            # needs root, debootstrap and a running Docker engine
set -euo pipefail

node_tag=${GRADQ_NODE_IMAGE:-node:20-bookworm-slim}
redis_tag=${GRADQ_REDIS_IMAGE:-redis:7-alpine}

have() { docker image inspect "$1" >/dev/null 2>&1; }
if have "$node_tag" && have "$redis_tag"; then
  echo "base-images: reusing $node_tag and $redis_tag"
  exit 0
fi

node_bin=$(command -v node)
node_version=$("$node_bin" --version)
[[ "$node_version" == v20.* ]] || {
  echo "base-images: this machine's node is $node_version; the image needs Node 20 (install nodejs 20)" >&2
  exit 1
}
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[[ -f "$npm_dir/package.json" ]] || { echo "base-images: npm not found beside $node_bin ($npm_dir)" >&2; exit 1; }
ca_bundle=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}

# The Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URI bookworm"), deb.debian.org otherwise.
mirror=${DEBIAN_MIRROR:-$(
  { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } |
    grep -E '/debian/?$' | head -n 1 || true
)}
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /var/tmp/gradq-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "base-images: debootstrap bookworm from $mirror (a few minutes, once)"
debootstrap --variant=minbase --include=redis-server bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
}

install -m 0755 "$node_bin" "$rootfs/usr/bin/node"
mkdir -p "$rootfs/usr/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"
mkdir -p "$rootfs/etc/ssl/certs"
cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chroot "$rootfs" useradd --uid 1000 --user-group --create-home --shell /bin/bash node
rm -rf "$rootfs"/usr/share/{doc,man,info,locale}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
  "$rootfs"/var/log/*.log

tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'LABEL org.gradq.stand-in=debootstrap-bookworm-node20-redis' \
  --change 'CMD ["node"]' \
  - "$node_tag" >/dev/null
have "$redis_tag" || docker tag "$node_tag" "$redis_tag"
docker run --rm --network host "$node_tag" node --version
echo "base-images: built $node_tag and $redis_tag ($(docker image inspect -f '{{.Size}}' "$node_tag") bytes)"
