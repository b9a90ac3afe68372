#!/usr/bin/env bash
# Layer store benchmark, strata beside its floor and its peer, in one run:
#
#   cycle      create + mount + umount + rm of a layer over a 10-layer parent chain
#   floor      mkdir + `mount -t overlay` + umount + rm of the same directories (no store)
#   peer       `docker create` + `docker rm` of a 10-layer image (dockerd 20.10, overlay2)
#   deep       mount + umount of a layer over 500 lower layers (dockerd refuses past 128)
#
# Prints a Markdown table of ratios for BENCHMARKS.md. Needs root, hyperfine and docker.io
# (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages hyperfine docker.io
RUNS=${RUNS:-100}

build_release -p strata-bench
W=$(mktemp -d /tmp/strata-bench-XXXXXX)
R=$W/root
trap bench_cleanup EXIT

# A 10-layer chain, each layer holding a few files.
P=$($S --root "$R" layer create)
for i in $(seq 1 9); do
  printf 'layer %s\n' "$i" > "$R/overlay2/$P/diff/file-$i"
  P=$($S --root "$R" layer create --parent "$P")
done
printf 'layer 10\n' > "$R/overlay2/$P/diff/file-10"
# The floor mounts the very same lowers (through the same l/ links) with a fresh upper.
probe=$($S --root "$R" layer create --parent "$P")
LOWERS=$(tr ':' '\n' < "$R/overlay2/$probe/lower" | sed "s|^|$R/overlay2/|" | paste -sd:)
$S --root "$R" layer rm "$probe"
F=$W/floor

# A 500-layer chain for the deep mount.
D=$W/deep
T=$($S --root "$D" layer create)
for i in $(seq 1 500); do T=$($S --root "$D" layer create --parent "$T"); done

# dockerd with a 10-layer image: an imported base and nine COPY steps.
mkdir -p "$W/rootfs/bin" "$W/ctx"
cp /bin/true "$W/rootfs/bin/"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
start_dockerd
$DK import "$W/rootfs.tar" bench:base >/dev/null
{ echo "FROM bench:base"; for i in $(seq 1 9); do echo "COPY f$i /f$i"; echo "$i" > "$W/ctx/f$i"; done; } > "$W/ctx/Dockerfile"
DOCKER_BUILDKIT=0 $DK build -q -t bench:10 "$W/ctx" >/dev/null
[ "$($DK image inspect -f '{{len .RootFS.Layers}}' bench:10)" = 10 ]

hyperfine --warmup 5 --runs "$RUNS" --export-json "$W/cycle.json" --style basic \
  -n "floor: mount -t overlay" \
  "mkdir -p $F/u $F/w $F/m && mount -t overlay overlay -o lowerdir=$LOWERS,upperdir=$F/u,workdir=$F/w $F/m && umount $F/m && rm -rf $F" \
  -n "strata: create+mount+umount+rm" \
  "id=\$($S --root $R layer create --parent $P) && $S --root $R layer mount \$id >/dev/null && $S --root $R layer umount \$id && $S --root $R layer rm \$id >/dev/null" \
  -n "docker: create+rm" \
  "$DK rm \$($DK create bench:10 /bin/true) >/dev/null" \
  -n "strata: mount+umount, 500 lowers" \
  "$S --root $D layer mount $T >/dev/null && $S --root $D layer umount $T" \
  >&2

# The same cycle in process: the engines alone, no process start-up on either side.
"$BIN/layer-cycle" "$R" "$P" "$DSOCK" bench:10 "$RUNS" > "$W/inproc.txt"

python3 - "$W/cycle.json" "$W/inproc.txt" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
inproc = {l.split()[0]: (float(l.split()[1]), float(l.split()[2])) for l in open(sys.argv[2])}
floor, ours, peer, deep = (r[k] for k in ("floor: mount -t overlay", "strata: create+mount+umount+rm", "docker: create+rm", "strata: mount+umount, 500 lowers"))
ms = lambda x: f'{x["mean"]*1e3:.2f} ± {x["stddev"]*1e3:.2f} ms'
print("| what | mean | ratio |")
print("|---|---|---|")
print(f'| floor: mkdir + `mount -t overlay` + umount + rm, 10 lowers | {ms(floor)} | 1.00× (floor) |')
print(f'| strata: layer create + mount + umount + rm, 10-layer parent | {ms(ours)} | {ours["mean"]/floor["mean"]:.2f}× the floor (target ≤ 2×) |')
print(f'| docker 20.10: create + rm, 10-layer image | {ms(peer)} | strata is {peer["mean"]/ours["mean"]:.1f}× faster (target ≥ 10×) |')
print(f'| strata: layer mount + umount, 500 lower layers | {ms(deep)} | {deep["mean"]/floor["mean"]:.2f}× the 10-layer floor; dockerd refuses > 128 |')
print(f'| bound: the floor against docker | | the floor is {peer["mean"]/floor["mean"]:.1f}× faster than docker |')
print()
print("In process (library calls and raw syscalls; dockerd through its API socket, no client start-up):")
print()
print("| what | mean | ratio |")
print("|---|---|---|")
f, o, d = inproc["floor"], inproc["strata"], inproc["dockerd-api"]
print(f'| floor: mkdir + mount(2) + umount(2) + rm, 10 lowers | {f[0]:.2f} ± {f[1]:.2f} ms | 1.00× (floor) |')
print(f'| strata library: create + mount + unmount + remove | {o[0]:.2f} ± {o[1]:.2f} ms | {o[0]/f[0]:.2f}× the floor (target ≤ 2×) |')
print(f'| dockerd API: POST /containers/create + DELETE | {d[0]:.2f} ± {d[1]:.2f} ms | strata is {d[0]/o[0]:.1f}× faster (target ≥ 10×) |')
print(f'| bound: the floor against dockerd | | the floor is {d[0]/f[0]:.1f}× faster than dockerd |')
PY
