# Shared set-up for the benchmark scripts: sourced, not run.

# Stop unless root (the benchmarks mount OverlayFS and run dockerd).
require_root() {
  [ "$(id -u)" -eq 0 ] || { echo "run as root: the benchmarks mount OverlayFS and start dockerd" >&2; exit 1; }
}

# apt-get install the named Debian packages that are missing.
need_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Stop dockerd, unmount everything under $W and remove it (set as the EXIT trap).
bench_cleanup() {
  [ -f "$W/docker.pid" ] && kill "$(cat "$W/docker.pid")" 2>/dev/null && sleep 3
  grep -o " $W[^ ]*" /proc/self/mountinfo | tac | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$W"
}

# The prelude of a benchmark beside docker and podman on the Debian image: the packages, the
# knobs (RUNS, BENCH_DIR, ROOTFS_TAR), the release build, a work directory $W named after $1
# (removed on exit) with $RES for hyperfine's results, and `say`.
bench_with_peers() {
  need_packages hyperfine docker.io podman runc
  RUNS=${RUNS:-10}
  BENCH_DIR=${BENCH_DIR:-/var/tmp/strata-bench}
  ROOTFS_TAR=${ROOTFS_TAR:-/var/tmp/strata-debian-rootfs.tar}
  [ -s "$ROOTFS_TAR" ] || { echo "no $ROOTFS_TAR: run bench/containers.sh once (it makes it)" >&2; exit 1; }
  build_release
  mkdir -p "$BENCH_DIR"
  W=$(mktemp -d "$BENCH_DIR/$1.XXXXXX")
  trap bench_cleanup EXIT
  RES=$W/results
  mkdir -p "$RES"
}

say() { echo "== $*" >&2; }

# Start dockerd 20.10 on $W/docker with its own socket; sets DK to the matching docker command.
start_dockerd() {
  DSOCK=$W/docker.sock
  dockerd --data-root "$W/docker" --exec-root "$W/dexec" --pidfile "$W/docker.pid" -H "unix://$DSOCK" \
    --storage-driver overlay2 --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
    > "$W/dockerd.log" 2>&1 &
  DK="/usr/bin/docker -H unix://$DSOCK"
  for _ in $(seq 100); do $DK version >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "dockerd did not start: see $W/dockerd.log" >&2
  return 1
}

# Build the release binaries as users get them (.cargo/config.toml: static, for this machine's
# triple); sets BIN to their directory and S to the strata command.
build_release() {
  cargo build --release -q -p strata-cli "$@"
  BIN=$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release
  S=$BIN/strata
}

# The peers for container benchmarks: dockerd (see start_dockerd) and podman with private roots
# under $W, runc, no network; strata's root $R. Each imports $ROOTFS_TAR as deb:1 with
# CMD ["/bin/bash"]. Sets R, PODMAN and PLIMITS (podman asks runc for limits above those it
# runs under by default, which takes CAP_SYS_RESOURCE).
start_peers_with_debian() {
  R=$W/strata
  PODMAN="env TMPDIR=$W/ptmp podman --root $W/podman --runroot $W/r --storage-driver overlay --events-backend none --cgroup-manager cgroupfs --runtime runc"
  PLIMITS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
  mkdir -p "$W/ptmp"
  echo "== importing $ROOTFS_TAR as deb:1" >&2
  start_dockerd
  $S --root "$R" import "$ROOTFS_TAR" deb:1 -c 'CMD ["/bin/bash"]' >/dev/null
  $DK import -c 'CMD ["/bin/bash"]' "$ROOTFS_TAR" deb:1 >/dev/null
  $PODMAN import -q -c 'CMD ["/bin/bash"]' "$ROOTFS_TAR" deb:1 >/dev/null
}
