#!/usr/bin/env bash
# Image benchmark, strata beside dockerd 20.10 and podman, in one run:
#
#   load     `strata load` of a 6-layer docker-save archive (a debootstrap Debian bookworm minbase
#            rootfs plus five added layers: files, deletions, changes) against `docker load` and
#            `podman load` of the same file, each into an empty store; peak RSS of strata and
#            podman (dockerd does docker's work, so its client's RSS would mean nothing)
#   images   `images` with 100 images in the store
#   rmi      removing those 100 images, all names in one command
#
# The archive is made once, by a dockerd of our own (docker import of the rootfs, then
# `docker build`), and kept in $BENCH_DIR for the next run.
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine, docker.io, podman, time and debootstrap if missing. Knobs:
#   RUNS=3                       runs per load and rmi case (medians are reported)
#   LIST_RUNS=20                 runs per `images` case
#   BENCH_DIR=/var/tmp/strata-bench  where the archive is kept (and the first load filesystem)
#   LOAD_DIRS="$BENCH_DIR /dev/shm"  the filesystems the load comparison runs on, in turn
#   ROOTFS_TAR=/var/tmp/rootfs.tar   the Debian rootfs (made with debootstrap if absent)
#
# Nothing is deleted while loads are timed: before each run the last run's store is renamed
# aside (dockerd is restarted on an empty data root), and everything is removed at exit.
# ext4 without a journal (this VM's disk) will not reuse an inode freed in the last minute, six
# while its inode table block is dirty, and scans past each such inode on every create: a load
# right after deleting the last one's 9000 files costs up to 5x more, whichever tool runs it.
# For the same reason $BENCH_DIR is marked a top of directory hierarchy (chattr +T): ext4 then
# puts each scratch directory in a fresh block group, away from earlier runs' deletions.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages hyperfine docker.io podman time debootstrap
RUNS=${RUNS:-3}
LIST_RUNS=${LIST_RUNS:-20}
BENCH_DIR=${BENCH_DIR:-/var/tmp/strata-bench}
LOAD_DIRS=${LOAD_DIRS:-"$BENCH_DIR /dev/shm"}
ROOTFS_TAR=${ROOTFS_TAR:-/var/tmp/rootfs.tar}
build_release
mkdir -p "$BENCH_DIR"
chattr +T "$BENCH_DIR" 2>/dev/null || true # ext2/3/4 only: see above
IMAGE=$BENCH_DIR/debian6.tar
say() { echo "== $*" >&2; }

# Every scratch directory made here, cleaned (dockerd stopped, mounts dropped, removed) on exit.
WORKS=()
cleanup_all() {
  for W in ${WORKS[@]+"${WORKS[@]}"}; do bench_cleanup; done
}
trap cleanup_all EXIT
new_work() { # new_work DIR: a fresh scratch directory under DIR, in $W
  W=$(mktemp -d "$1/sib.XXXXXX") # short: podman wants a run root under 50 characters
  WORKS+=("$W")
}
end_work() { # stop this scratch directory's dockerd, unmount and remove it
  bench_cleanup
  local keep=()
  for w in "${WORKS[@]}"; do [ "$w" = "$W" ] || keep+=("$w"); done
  WORKS=(${keep[@]+"${keep[@]}"})
}
# podman on its own root, run root and temporary directory under $W (TMPDIR is where podman
# stages blobs; /var/tmp otherwise), so the whole store lives on the filesystem under test.
podman_cmd() {
  echo "env TMPDIR=$W/ptmp podman --root $W/podman --runroot $W/r --storage-driver overlay --events-backend none --cgroup-manager cgroupfs"
}
# Stop the dockerd of $W and wait until it is gone.
stop_dockerd() {
  [ -f "$W/docker.pid" ] || return 0
  local pid
  pid=$(cat "$W/docker.pid")
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
# Write an executable script (hyperfine's --prepare runs these).
script() { cat > "$1"; chmod +x "$1"; }

# ---------------------------------------------------------------------------------------------
# The input: a docker-save archive of a 6-layer image, made once.
if [ ! -s "$IMAGE" ]; then
  say "making $IMAGE"
  if [ ! -s "$ROOTFS_TAR" ]; then
    ROOTFS_TAR=$BENCH_DIR/rootfs.tar
    debootstrap --variant=minbase bookworm "$BENCH_DIR/rootfs" >/dev/null
    tar --numeric-owner --xattrs -C "$BENCH_DIR/rootfs" -cf "$ROOTFS_TAR" .
    rm -rf "$BENCH_DIR/rootfs"
  fi
  new_work "$BENCH_DIR"
  python3 - "$W/ctx" <<'PY'
import os, random, sys
ctx = sys.argv[1]
rnd = random.Random(20240601)
def put(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(rnd.randbytes(size))
# An application tree: 1500 files of 1-16 KB in 50 directories (about 12 MB).
for i in range(1500):
    put(f"{ctx}/app/src{i % 50}/mod{i}.py", rnd.randint(1024, 16384))
for i in range(40):
    put(f"{ctx}/app/tests/test{i}.py", rnd.randint(1024, 8192))
# Libraries: 16 files of 256 KB - 1 MB (about 10 MB).
for i in range(16):
    put(f"{ctx}/lib/libbench{i}.so.1", rnd.randint(256 << 10, 1 << 20))
# Data: 4 files of 2 MB.
for i in range(4):
    put(f"{ctx}/data/blob{i}.bin", 2 << 20)
with open(f"{ctx}/Dockerfile", "w") as f:
    f.write("""FROM deb:base
COPY app/ /opt/app/
COPY lib/ /usr/local/lib/bench/
RUN rm -rf /usr/share/man /usr/share/info /usr/share/locale /var/cache/debconf/templates.dat-old \\
 && find /usr/share/doc -name 'changelog*' -delete && echo bench > /etc/bench-release
COPY data/ /srv/data/
RUN echo 'bench:x:1000:1000::/home/bench:/bin/sh' >> /etc/passwd && mkdir -p /home/bench \\
 && cp -a /opt/app/src0 /home/bench/ && rm -rf /opt/app/tests
CMD ["/bin/sh"]
""")
PY
  start_dockerd
  $DK import "$ROOTFS_TAR" deb:base >/dev/null
  DOCKER_BUILDKIT=0 $DK build -q --network none -t bench:debian6 "$W/ctx" >/dev/null
  [ "$($DK image inspect -f '{{len .RootFS.Layers}}' bench:debian6)" = 6 ]
  $DK save -o "$IMAGE.tmp" bench:debian6
  mv "$IMAGE.tmp" "$IMAGE"
  stop_dockerd # its files go at exit, not before the loads (see above)
fi
IMAGE_MB=$(( $(stat -c %s "$IMAGE") / 1000000 ))
LAYERS=$(tar -xOf "$IMAGE" manifest.json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["Layers"]))')
# Per layer: size in MB and number of entries (and whiteouts).
LAYER_INFO=$(python3 - "$IMAGE" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = json.load(t.extractfile("manifest.json"))[0]
    out = []
    for name in m["Layers"]:
        f = t.getmember(name)
        with tarfile.open(fileobj=t.extractfile(f)) as l:
            names = l.getnames()
        wh = sum(1 for n in names if n.rsplit("/", 1)[-1].startswith(".wh."))
        out.append(f"{f.size/1e6:.1f} MB, {len(names)} entries" + (f", {wh} whiteouts" if wh else ""))
print("; ".join(out))
PY
)

# ---------------------------------------------------------------------------------------------
# Load, on each filesystem in turn.
load_on() { # load_on DIR LABEL: prints the table row data to $RESULTS/load-LABEL.*
  local dir=$1 label=$2
  new_work "$dir"
  say "load on $label ($dir)"
  cp "$IMAGE" "$W/image.tar"
  local R=$W/strata PODMAN
  PODMAN=$(podman_cmd)
  start_dockerd
  # Before each run the last run's store goes aside (renamed, not deleted: see above).
  mkdir -p "$W/old" "$W/ptmp"
  script "$W/prep-strata" <<EOF
#!/bin/sh
[ ! -e $R ] || mv $R $W/old/strata.\$(date +%s%N); sync
EOF
  script "$W/prep-docker" <<EOF
#!/bin/bash
set -e
W=$W
. $PWD/bench/lib.sh
$(declare -f stop_dockerd)
stop_dockerd
mv $W/docker $W/old/docker.\$(date +%s%N); sync
start_dockerd
EOF
  script "$W/prep-podman" <<EOF
#!/bin/sh
grep -oE " $W/(podman|r)/[^ ]*" /proc/self/mountinfo | tac | xargs -r -n1 umount -l
n=\$(date +%s%N)
[ ! -e $W/podman ] || mv $W/podman $W/old/podman.\$n
[ ! -e $W/r ] || mv $W/r $W/old/r.\$n
sync
EOF
  hyperfine --runs "$RUNS" --export-json "$RESULTS/load-$label.json" --style basic \
    -n "strata load" --prepare "$W/prep-strata" "$S --root $R load -q -i $W/image.tar" \
    -n "docker load" --prepare "$W/prep-docker" "$DK load -q -i $W/image.tar" \
    -n "podman load" --prepare "$W/prep-podman" "$PODMAN load -q -i $W/image.tar" \
    >&2
  # What each store holds afterwards: the image, with all its layers.
  [ "$($S --root "$R" images -q | wc -l)" = 1 ]
  [ "$($DK image inspect -f '{{len .RootFS.Layers}}' bench:debian6)" = "$LAYERS" ]
  [ "$($PODMAN image inspect -f '{{len .RootFS.Layers}}' bench:debian6)" = "$LAYERS" ]
  # Peak RSS of one more load each (strata, podman).
  "$W/prep-strata"
  /usr/bin/time -f %M -o "$RESULTS/rss-strata-$label" "$S" --root "$R" load -q -i "$W/image.tar" >/dev/null
  "$W/prep-podman"
  /usr/bin/time -f %M -o "$RESULTS/rss-podman-$label" $PODMAN load -q -i "$W/image.tar" >/dev/null
  FSTYPE[$label]=$(df --output=fstype "$W" | tail -1)
  end_work
}

RESULTS=$(mktemp -d /tmp/strata-images-results-XXXXXX)
WORKS+=("$RESULTS")
declare -A FSTYPE
LABELS=()
for dir in $LOAD_DIRS; do
  label=$(basename "$dir")
  load_on "$dir" "$label"
  LABELS+=("$label:$dir")
done

# ---------------------------------------------------------------------------------------------
# 100 images: 100 one-layer images of a tiny distinct rootfs each, made with `strata import`,
# saved by strata into one archive that every store loads.
new_work "$BENCH_DIR"
say "100 images ($BENCH_DIR)"
R=$W/strata
PODMAN=$(podman_cmd)
mkdir -p "$W/ptmp"
NAMES=()
for i in $(seq -w 1 100); do
  mkdir -p "$W/t/$i/etc"
  echo "image $i" > "$W/t/$i/etc/image-id"
  $S --root "$R" import "$W/t/$i" "bench/img$i:latest" >/dev/null
  NAMES+=("bench/img$i:latest")
done
$S --root "$R" save -o "$W/100.tar" "${NAMES[@]}"
start_dockerd
$DK load -q -i "$W/100.tar" >/dev/null
$PODMAN load -q -i "$W/100.tar" >/dev/null
[ "$($S --root "$R" images -q | wc -l)" = 100 ]
[ "$($DK images -q | wc -l)" = 100 ]
[ "$($PODMAN images -q | wc -l)" = 100 ]
hyperfine -N --warmup 3 --runs "$LIST_RUNS" --export-json "$RESULTS/images.json" --style basic \
  -n "strata images" "$S --root $R images" \
  -n "docker images" "$DK images" \
  -n "podman images" "$PODMAN images" \
  >&2
script "$W/prep-strata" <<EOF
#!/bin/sh
rm -rf $R; $S --root $R load -q -i $W/100.tar >/dev/null; sync
EOF
script "$W/prep-docker" <<EOF
#!/bin/sh
$DK load -q -i $W/100.tar >/dev/null; sync
EOF
script "$W/prep-podman" <<EOF
#!/bin/sh
$PODMAN load -q -i $W/100.tar >/dev/null; sync
EOF
hyperfine --runs "$RUNS" --export-json "$RESULTS/rmi.json" --style basic \
  -n "strata rmi" --prepare "$W/prep-strata" "$S --root $R rmi ${NAMES[*]}" \
  -n "docker rmi" --prepare "$W/prep-docker" "$DK rmi ${NAMES[*]}" \
  -n "podman rmi" --prepare "$W/prep-podman" "$PODMAN rmi ${NAMES[*]}" \
  >&2
# Each rmi emptied its store.
[ "$($S --root "$R" images -q | wc -l)" = 0 ]
[ "$($DK images -aq | wc -l)" = 0 ]
[ "$($PODMAN images -aq | wc -l)" = 0 ]
STRATA_V=$($S --version)
DOCKER_V=$($DK version -f '{{.Server.Version}}')
PODMAN_V=$(podman --version)
FS100=$(df --output=fstype "$W" | tail -1)
end_work

# ---------------------------------------------------------------------------------------------
FSINFO=""
for l in "${LABELS[@]}"; do FSINFO+="${l#*:}=${FSTYPE[${l%%:*}]},"; done
python3 - "$RESULTS" "$IMAGE_MB" "$LAYERS" "$LAYER_INFO" "$RUNS" "$LIST_RUNS" "$FSINFO" \
  "$(uname -r)" "$(nproc)" "$STRATA_V" "$DOCKER_V" "$PODMAN_V" "$FS100, \`$BENCH_DIR\`" "${LABELS[@]}" <<'PY'
import json, sys
res, mb, layers, layer_info, runs, list_runs, fsinfo, kernel, cores, sv, dv, pv, fs100 = sys.argv[1:14]
labels = sys.argv[14:]
fs = dict(x.split("=") for x in fsinfo.strip(",").split(","))
load = lambda f: {r["command"]: r for r in json.load(open(f"{res}/{f}"))["results"]}
med = lambda r: r["median"]
def t(r):
    m = med(r)
    return f"{m:.2f} s" if m >= 1 else f"{m*1e3:.0f} ms"
def ratio(other, ours):
    x = med(other) / med(ours)
    return f"{x:.1f}× faster" if x >= 1 else f"{1/x:.1f}× slower"
def span(r):
    return f'{t({"median": min(r["times"])})} – {t({"median": max(r["times"])})}'
print(f"Kernel {kernel}, {cores} cores; {sv}; dockerd {dv} (overlay2); {pv} (overlay).\n")
print(f"The archive: `docker save` of a {layers}-layer image, {mb} MB: {layer_info}.\n")
print("Each timed load starts on an empty store after a `sync`; the last run's store is renamed aside, "
      "not deleted, so no tool meets ext4's recently freed inodes.\n")
verdicts = []
for l in labels:
    label, d = l.split(":", 1)
    r = {k.split()[0]: v for k, v in load(f"load-{label}.json").items()}
    rss_s = int(open(f"{res}/rss-strata-{label}").read().split()[-1])
    rss_p = int(open(f"{res}/rss-podman-{label}").read().split()[-1])
    print(f"### Load into an empty store on {fs[d]}, `{d}`, median of {runs}\n")
    print("| what | median | range | strata is |")
    print("|---|---|---|---|")
    s = r["strata"]
    print(f'| `strata load` | {t(s)} | {span(s)} | |')
    for k in ("docker", "podman"):
        print(f'| `{k} load` | {t(r[k])} | {span(r[k])} | {ratio(r[k], s)} |')
        if k == "docker":
            verdicts.append((fs[d], d, med(r[k]) / med(s)))
    print(f"\nPeak RSS: strata load {rss_s/1024:.1f} MiB, podman load {rss_p/1024:.1f} MiB.\n")
i = load("images.json"); m = load("rmi.json")
print(f"### 100 images (on {fs100})\n")
print("| what | median | range | strata is |")
print("|---|---|---|---|")
for name, rs, n in (("images", i, list_runs), ("rmi", m, runs)):
    s = rs[f"strata {name}"]
    print(f"| `strata {name}`{' (100 names)' if name == 'rmi' else ''} | {t(s)} | {span(s)} | median of {n} |")
    for k in ("docker", "podman"):
        r = rs[f"{k} {name}"]
        print(f"| `{k} {name}` | {t(r)} | {span(r)} | {ratio(r, s)} |")
print()
for fstype, d, x in verdicts:
    print(f"Load ≥ 2× faster than `docker load` on {fstype} (`{d}`): {'**met**' if x >= 2 else '**not met**'} ({x:.1f}×).")
PY
