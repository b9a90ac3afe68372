#!/usr/bin/env bash
# Container benchmark, strata beside dockerd 20.10 and podman, all three running runc, in one run:
#
#   create   `create deb:1 true` into a store with no containers (--prepare removes the last
#            run's); strata also with some 300 containers in the store
#   run      `run --rm deb:1 true`, beside its floor: `runc run` of the very bundle strata
#            writes for such a container, its tree already mounted
#   diff     `diff` of a container that changed 10 files of the rootfs, and of one that wrote
#            10,000 small files
#   commit   `commit` of such a container, a new one each run (made and run in --prepare),
#            beside its floor: `tar -c | tar -x` of the container's upper directory into a new
#            one; peak RSS of the 10,000-file commit
#
# The image is a Debian bookworm minbase rootfs, imported by each tool as deb:1 with
# CMD ["/bin/bash"]. dockerd and podman get private roots in the scratch directory, no network
# (`--network none`, strata's default) and runc. podman gets `--ulimit nofile=1024:1024
# --ulimit nproc=1024:1024`: by default it asks runc for limits above those it runs under,
# which takes CAP_SYS_RESOURCE, and the sandbox this was written in lacks it.
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine, docker.io, podman, runc, time (and debootstrap without a rootfs) if missing. Knobs:
#   RUNS=50          runs per create, run and diff case (5 warm-ups)
#   COMMIT_RUNS=10   runs per commit case (1 warm-up)
#   BENCH_DIR=/var/tmp/strata-bench  where the scratch directory goes (removed at exit)
#   ROOTFS_TAR=/var/tmp/strata-debian-rootfs.tar  the rootfs (made with debootstrap if absent)
#
# No case runs right after many files were deleted (see "This VM's ext4 and freshly deleted
# files" in BENCHMARKS.md): only create's and run's few files per run are, and commits pile up
# as unnamed images, removed with the scratch directory at exit.
set -euo pipefail
trap 'echo "bench/containers.sh: failed at line $LINENO" >&2' ERR
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages hyperfine docker.io podman runc time
RUNS=${RUNS:-50}
COMMIT_RUNS=${COMMIT_RUNS:-10}
BENCH_DIR=${BENCH_DIR:-/var/tmp/strata-bench}
ROOTFS_TAR=${ROOTFS_TAR:-/var/tmp/strata-debian-rootfs.tar}
build_release
mkdir -p "$BENCH_DIR"
chattr +T "$BENCH_DIR" 2>/dev/null || true # ext4: scratch directories in fresh block groups
W=$(mktemp -d "$BENCH_DIR/ctr.XXXXXX") # short: podman wants a run root under 50 characters
trap bench_cleanup EXIT
say() { echo "== $*" >&2; }
script() { cat > "$1"; chmod +x "$1"; } # hyperfine -N runs --prepare without a shell
RES=$W/results
mkdir -p "$RES"

if [ ! -s "$ROOTFS_TAR" ]; then
  say "making a Debian rootfs with debootstrap"
  need_packages debootstrap
  debootstrap --variant=minbase bookworm "$W/rootfs" >/dev/null
  ROOTFS_TAR=$W/rootfs.tar
  tar --numeric-owner --xattrs -C "$W/rootfs" -cf "$ROOTFS_TAR" .
fi

start_peers_with_debian

# ---------------------------------------------------------------------------------------------
# Each tool's store emptied of containers, then a sync: create's --prepare.
for t in strata docker podman; do
  case $t in
    strata) empty="$S --root $R ps -aq | xargs -r $S --root $R rm -f" ;;
    docker) empty="$DK ps -aq | xargs -r $DK rm -f" ;;
    podman) empty="$PODMAN rm -af" ;;
  esac
  script "$W/empty-$t" <<EOF
#!/bin/sh
$empty >/dev/null
sync
EOF
done
script "$W/sync" <<<'#!/bin/sh
sync'

say "create"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$RES/create.json" --style basic \
  -n "strata create" --prepare "$W/empty-strata" "$S --root $R create deb:1 true" \
  -n "docker create" --prepare "$W/empty-docker" "$DK create --network none deb:1 true" \
  -n "podman create" --prepare "$W/empty-podman" "$PODMAN create --network none $PLIMITS deb:1 true" \
  >&2
for t in strata docker podman; do "$W/empty-$t"; done

# ---------------------------------------------------------------------------------------------
say "run --rm"
# The floor: runc alone, on the bundle strata wrote for a container of the same image and
# command, with that container's tree mounted where the bundle says.
$S --root "$R" create --name floor deb:1 true >/dev/null
$S --root "$R" start -a floor
BUNDLE=$R/strata/containers/$($S --root "$R" ps -aq --no-trunc)/bundle
$S --root "$R" mount floor >/dev/null
hyperfine -N --warmup 5 --runs "$RUNS" --prepare "$W/sync" --export-json "$RES/run.json" --style basic \
  -n "runc run" "runc --root $W/runc-floor run --bundle $BUNDLE floor" \
  -n "strata run" "$S --root $R run --rm deb:1 true" \
  -n "docker run" "$DK run --rm --network none deb:1 true" \
  -n "podman run" "$PODMAN run --rm --network none $PLIMITS deb:1 true" \
  >&2
$S --root "$R" umount floor
# --rm left no container behind (strata: the floor's only).
[ "$($S --root "$R" ps -aq | wc -l)" = 1 ]
[ "$($DK ps -aq | wc -l)" = 0 ]
[ "$($PODMAN ps -aq | wc -l)" = 0 ]

# ---------------------------------------------------------------------------------------------
# diff and commit, of two workloads: 10 files of the rootfs changed, 10,000 small files written.
TEN="for f in /etc/issue /etc/issue.net /etc/debian_version /etc/motd /etc/shells /etc/host.conf /etc/bash.bashrc /etc/profile /etc/nsswitch.conf /etc/login.defs; do echo x >> \$f; done"
TENK='mkdir /data && cd /data && for i in $(seq 10000); do echo $i > f$i; done'
declare -p TEN TENK > "$W/workloads"
# fresh TOOL WORKLOAD: write a script that creates a container running that workload, runs it,
# puts its ID in $W/last-TOOL and syncs.
fresh() {
  local create start
  case $1 in
    strata) create="$S --root $R create deb:1" start="$S --root $R start -a" ;;
    docker) create="$DK create --network none deb:1" start="$DK start -a" ;;
    podman) create="$PODMAN create --network none $PLIMITS deb:1" start="$PODMAN start -a" ;;
  esac
  script "$W/fresh-$1-$2" <<EOF
#!/bin/bash
set -e
. $W/workloads
id=\$($create sh -c "\$$2")
$start "\$id" >/dev/null
echo "\$id" > $W/last-$1
sync
EOF
}
say "diff"
for t in strata docker podman; do
  for w in TEN TENK; do fresh $t $w; "$W/fresh-$t-$w"; cp "$W/last-$t" "$W/$t-$w"; done
done
# Each tool sees the same changes (lines of diff output).
for w in TEN TENK; do
  for t in "$S --root $R:strata" "$DK:docker" "$PODMAN:podman"; do
    ${t%:*} diff "$(cat "$W/${t##*:}-$w")" | wc -l
  done | paste -sd' ' > "$RES/diff-lines-$w"
done
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$RES/diff.json" --style basic \
  -n "strata diff TEN" "$S --root $R diff $(cat "$W/strata-TEN")" \
  -n "docker diff TEN" "$DK diff $(cat "$W/docker-TEN")" \
  -n "podman diff TEN" "$PODMAN diff $(cat "$W/podman-TEN")" \
  -n "strata diff TENK" "$S --root $R diff $(cat "$W/strata-TENK")" \
  -n "docker diff TENK" "$DK diff $(cat "$W/docker-TENK")" \
  -n "podman diff TENK" "$PODMAN diff $(cat "$W/podman-TENK")" \
  >&2

# Each commit is of a container made and run in its --prepare: a container committed again
# gives the same diffID, and then strata and dockerd alike extract the layer only to delete it.
# The command reads the container's ID with a shell builtin (hyperfine subtracts the shell).
# The floor: GNU tar copying the upper directory of the container diffed above into a new
# directory (`tar -c | tar -x`), the pack and unpack every commit does, without hashing.
say "commit"
script "$W/fresh-floor" <<EOF
#!/bin/sh
mktemp -d $W/floor/XXXXXX > $W/last-floor
sync
EOF
mkdir -p "$W/floor"
for w in TEN TENK; do
  upper=$($S --root "$R" inspect "$(cat "$W/strata-$w")" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["GraphDriver"]["Data"]["UpperDir"])')
  hyperfine --warmup 1 --runs "$COMMIT_RUNS" --export-json "$RES/commit-$w.json" --style basic \
    -n "floor commit $w" --prepare "$W/fresh-floor" "read d < $W/last-floor; tar -C $upper -cf - . | tar -C \$d -xf -" \
    -n "strata commit $w" --prepare "$W/fresh-strata-$w" "read id < $W/last-strata; $S --root $R commit \$id" \
    -n "docker commit $w" --prepare "$W/fresh-docker-$w" "read id < $W/last-docker; $DK commit \$id" \
    -n "podman commit $w" --prepare "$W/fresh-podman-$w" "read id < $W/last-podman; $PODMAN commit -q \$id" \
    >&2
done
# Peak RSS of one more 10,000-file commit each (dockerd does docker's work: its client's RSS
# would say nothing).
"$W/fresh-strata-TENK"
/usr/bin/time -f %M -o "$RES/rss-strata" "$S" --root "$R" commit "$(cat "$W/last-strata")" > "$RES/strata-commit-id"
"$W/fresh-podman-TENK"
/usr/bin/time -f %M -o "$RES/rss-podman" $PODMAN commit -q "$(cat "$W/last-podman")" >/dev/null
# That commit made an image of one new layer (the 10,000 files) on the image's.
$S --root "$R" inspect "$(cat "$RES/strata-commit-id")" |
  python3 -c 'import json,sys; assert len(json.load(sys.stdin)[0]["RootFS"]["Layers"]) == 2'

# ---------------------------------------------------------------------------------------------
# Last, as it leaves hundreds of containers behind: strata reads every container's record to
# find a free name, so create again with some 300 more containers in the store.
say "create, 300 more containers"
for _ in $(seq 300); do $S --root "$R" create deb:1 true >/dev/null; done
$S --root "$R" ps -aq | wc -l > "$RES/containers"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$RES/create-many.json" --style basic \
  -n "strata create, many" "$S --root $R create deb:1 true" >&2

STRATA_V=$($S --version)
DOCKER_V=$($DK version -f '{{.Server.Version}}')
PODMAN_V=$(podman --version)
RUNC_V=$(runc --version | sed -n 1p)
HF_V=$(hyperfine --version)
FS=$(df --output=fstype "$W" | tail -1)
CPU=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | sed -n 1p)
MEM=$(free -g | awk '/^Mem:/ {print $2}')

# ---------------------------------------------------------------------------------------------
python3 - "$RES" "$RUNS" "$COMMIT_RUNS" "$(uname -r)" "$(nproc)" "$CPU" "$MEM" "$FS" "$BENCH_DIR" \
  "$STRATA_V" "$DOCKER_V" "$PODMAN_V" "$RUNC_V" "$HF_V" <<'PY'
import json, sys
res, runs, commit_runs, kernel, cores, cpu, mem, fs, bdir, sv, dv, pv, rv, hv = sys.argv[1:]
r = {}
for n in ("create", "create-many", "run", "diff", "commit-TEN", "commit-TENK"):
    r.update({x["command"]: x for x in json.load(open(f"{res}/{n}.json"))["results"]})
def t(x):
    m, s = x["mean"], x["stddev"]
    return f"{m:.2f} ± {s:.2f} s" if m >= 1 else f"{m*1e3:.1f} ± {s*1e3:.1f} ms"
def vs(other, ours):
    x = other["mean"] / ours["mean"]
    return f"{x:.1f}× faster" if x >= 1 else f"{1/x:.1f}× slower"
rss_s = int(open(f"{res}/rss-strata").read().split()[-1]) / 1024
rss_p = int(open(f"{res}/rss-podman").read().split()[-1]) / 1024
lines = {w: open(f"{res}/diff-lines-{w}").read().split() for w in ("TEN", "TENK")}
many = int(open(f"{res}/containers").read())
print(f"Kernel {kernel}, {cores} cores ({cpu}), {mem} GiB; stores on {fs} (`{bdir}`); {sv}; "
      f"dockerd {dv} (overlay2); {pv} (overlay); {rv}; {hv}.\n")
print(f"Means ± σ of {runs} runs (5 warm-ups) for create, run and diff, of {commit_runs} runs "
      "(1 warm-up) for commit.\n")
print("| what | strata | docker | podman | strata vs docker | strata vs podman | target |")
print("|---|---|---|---|---|---|---|")
verdicts = []
def row(label, key, target=None):
    s, d, p = (r[f"{tool} {key}"] for tool in ("strata", "docker", "podman"))
    cell = ""
    if target:
        x = d["mean"] / s["mean"]
        cell = f"≥ {target}× faster: {'met' if x >= target else '**not met**'}"
        verdicts.append((label, target, x))
    print(f"| {label} | {t(s)} | {t(d)} | {t(p)} | {vs(d, s)} | {vs(p, s)} | {cell} |")
row("`create deb:1 true`", "create", 5)
row("`run --rm deb:1 true`", "run", 2)
row("`diff`, 10 files changed", "diff TEN")
row("`diff`, 10,000 files added", "diff TENK")
row("`commit`, 10 files changed", "commit TEN", 2)
row("`commit`, 10,000 files added", "commit TENK", 2)
print()
runc, srun = r["runc run"], r["strata run"]
print(f"- Floor of `run`: `runc run` of the bundle strata writes, its tree already mounted: {t(runc)}; "
      f"strata's `run --rm` is {srun['mean']/runc['mean']:.2f}× it (+{(srun['mean']-runc['mean'])*1e3:.0f} ms).")
for w, what in (("TEN", "10 files"), ("TENK", "10,000 files")):
    f, c = r[f"floor commit {w}"], r[f"strata commit {w}"]
    print(f"- Floor of `commit`, {what}: `tar -c | tar -x` of the container's upper directory into a new one: "
          f"{t(f)}; strata's `commit` is {c['mean']/f['mean']:.2f}× it.")
m = r["strata create, many"]
print(f"- strata `create` with {many} containers in the store: {t(m)}, "
      f"{m['mean']/r['strata create']['mean']:.1f}× the empty store's.")
print(f"- Peak RSS of the 10,000-file commit: strata {rss_s:.1f} MiB, podman {rss_p:.1f} MiB.")
print(f"- Lines of `diff` output, strata/docker/podman: 10 files {'/'.join(lines['TEN'])}, "
      f"10,000 files {'/'.join(lines['TENK'])}.\n")
for label, target, x in verdicts:
    print(f"{label} at least {target}× faster than docker: {'**met**' if x >= target else '**not met**'} ({x:.1f}×).  ")
PY
