#!/bin/sh
# Package test (make check-package; scripts/test-all.sh runs it where podman is installed):
#   1. builds the Debian packages from a clean copy of the tree with dpkg-buildpackage
#      (DEB_BUILD_OPTIONS=nocheck: the unit tests already ran in make check; noautodbgsym);
#   2. runs lintian on them: any error, or any warning without an override, fails;
#   3. builds the same tree again as a higher version (a changelog entry on top, the compiled
#      objects reused: dpkg-buildpackage -nc), for the upgrade;
#   4. in a clean Debian 12 container (podman, the debian:bookworm-slim base of the image tests)
#      `apt-get install ./*.deb` pulls every dependency; the service is started as its unit says
#      (no systemd in the container: tests/package/inside.sh runs the unit's ExecStart as the
#      unit's user with its environment), trains its models at first start, and answers classify
#      and health through lighttpd (and classify through Apache); a selection and a feedback
#      item survive the upgrade; `remove` keeps state, user and configuration; `purge` leaves
#      nothing of the packages. About 2.5 minutes, 6.5 on a loaded machine (the first start
#      trains both models).
# Exit 77 (skip) without podman or dpkg-buildpackage, unless CML_REQUIRE_PACKAGE=1.
set -eu
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need dpkg-buildpackage || ! need lintian || ! need dh; then
    echo "package test: podman, dpkg-buildpackage, lintian or debhelper missing"
    [ "${CML_REQUIRE_PACKAGE:-0}" = 1 ] && exit 1
    exit 77
fi
podman_run() {
    podman --cgroup-manager=cgroupfs --events-backend=file --runtime runc "$@"
}
work=$(mktemp -d /tmp/cml-package.XXXXXX)
name="cml-package-$$"
cleanup() {
    podman_run rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }
}
trap cleanup EXIT
started=$(date +%s)
step() { echo "package test: [$(($(date +%s) - started)) s] $*"; }

# 1. A clean tree: the files git knows (tracked, or new and not ignored), none of a build.
mkdir -p "$work/v1/src" "$work/v2"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z -co --exclude-standard | xargs -0 sh -c \
        'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh | tar --null -cf - -T -) |
        tar -C "$work/v1/src" -xf -
else
    echo "package test: $top is not a git checkout"
    exit 1
fi
jobs=$(nproc 2>/dev/null || echo 2)
export DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$jobs"
build() { # DIR [dpkg-buildpackage options]
    dir=$1
    shift
    (cd "$dir/src" && dpkg-buildpackage -us -uc -b "$@") >"$dir/build.log" 2>&1 || {
        tail -n 40 "$dir/build.log"
        echo "package test: dpkg-buildpackage failed in $dir"
        exit 1
    }
}
build "$work/v1"
version=$(cd "$work/v1/src" && dpkg-parsechangelog -S Version)
step "built $version: $(cd "$work/v1" && ls ./*.deb | tr '\n' ' ')"

# 2. lintian: E: is an error, W: a warning nobody explained in debian/*.lintian-overrides.
lintian --fail-on error,warning "$work/v1"/*.changes >"$work/lintian.log" 2>&1 || {
    cat "$work/lintian.log"
    echo "package test: lintian found errors or unexplained warnings"
    exit 1
}
step "lintian: no error, no warning without an override ($(grep -c . "$work/lintian.log" || true) lines of notes)"

# 3. The upgrade: the same tree, built objects and all, one version higher.
cp -a "$work/v1/src" "$work/v2/src"
rm -f "$work/v2/src/debian/files" # the first build's list of what it made
next="$version+pkgtest1"
{
    printf 'cultivate-ml (%s) unstable; urgency=medium\n\n  * Package test upgrade.\n\n' "$next"
    printf ' -- cultivate-ml developers <maintainers@cultivate-ml.org>  %s\n\n' "$(date -R)"
    cat "$work/v1/src/debian/changelog"
} >"$work/v2/src/debian/changelog.new"
mv "$work/v2/src/debian/changelog.new" "$work/v2/src/debian/changelog"
build "$work/v2" -nc
step "rebuilt as $next for the upgrade"
mkdir "$work/debs1" "$work/debs2"
cp "$work/v1"/*.deb "$work/debs1/"
cp "$work/v2"/*.deb "$work/debs2/"
cp "$top/tests/package/inside.sh" "$work/inside.sh"

# 4. The clean container (its own network namespace: lighttpd's port 80 is its own).
if ! podman_run image exists debian:bookworm-slim; then
    echo "package test: making debian:bookworm-slim with debootstrap"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    debootstrap --variant=minbase bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$work/rootfs" -c . | podman_run import - debian:bookworm-slim >/dev/null
    rm -rf "$work/rootfs"
fi
podman_run run -d --name "$name" --ulimit nofile=20000:20000 --ulimit nproc=4000:4000 \
    -v "$work:/t:ro" debian:bookworm-slim sleep infinity >/dev/null
inside() { podman_run exec "$name" sh /t/inside.sh "$@"; }
inside prepare
step "container ready"
inside install /t/debs1
inside start
inside check
inside apache
inside select
inside stop
step "first install served; upgrading"
inside upgrade /t/debs2
inside start
inside check
inside persisted
inside stop
inside remove
inside purge
step "done"
echo "package test: passed"
