#!/usr/bin/env bash
# Scale benchmark: the commands whose work could grow with the store, each timed in a small
# store (10 images, no container) and in a large one (1,000 images, 1,000 containers, about
# 5,000 layers), strata beside dockerd 20.10 on copies of the very same stores. The target is
# strata's large/small ratio (at most 2x).
#
#   create     `create` of an image
#   rmi        `rmi` of one image with three layers of its own (loaded before each run)
#   rmi x100   `rmi` of 100 images, all names in one command (loaded before each run)
#   layer rm   `layer rm` of an empty layer (made before each run; strata only)
#   images, ps listing everything: grows with the store by nature, shown for scale
#
# The images come from one docker-save archive written by a script (each image: one of ten
# shared base layers and three small layers of its own); the containers are made by strata;
# dockerd is started on a copy of each strata store, so both tools work on the same content.
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine and docker.io if missing. Knobs: RUNS=30 (create, layer rm, listings),
# RMI_RUNS=10, IMAGES=1000, CONTAINERS=1000, BENCH_DIR=/var/tmp (where the stores live),
# DOCKER=1 (0: strata only).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages hyperfine docker.io
RUNS=${RUNS:-30}
RMI_RUNS=${RMI_RUNS:-10}
IMAGES=${IMAGES:-1000}
CONTAINERS=${CONTAINERS:-1000}
build_release
BENCH_DIR=${BENCH_DIR:-/var/tmp}
DOCKER=${DOCKER:-1}
W=$(mktemp -d "$BENCH_DIR/strata-scale-XXXXXX")
trap bench_cleanup EXIT
say() { echo "== $*" >&2; }

# archive OUT N PREFIX: a docker-save archive of N images named PREFIX<i>:latest.
archive() {
  python3 - "$@" <<'PY'
import hashlib, io, json, sys, tarfile
out, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def layer(name, data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
        t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return hashlib.sha256(raw).hexdigest(), raw
with tarfile.open(out, "w") as archive:
    def add(name, raw):
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(raw), 1700000000
        archive.addfile(info, io.BytesIO(raw))
    written, manifest = set(), []
    for i in range(n):
        layers = [layer(f"base{i % 10}", b"base %d\n" % (i % 10))]
        layers += [layer(f"{prefix}{i}/f{j}", b"%s %d layer %d\n" % (prefix.encode(), i, j)) for j in range(3)]
        for digest, raw in layers:
            if digest not in written:
                add(f"{digest}/layer.tar", raw)
                written.add(digest)
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/true"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d, _ in layers]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {k}"} for k in range(4)],
        }).encode()
        cid = hashlib.sha256(config).hexdigest()
        add(f"{cid}.json", config)
        manifest.append({"Config": f"{cid}.json", "RepoTags": [f"{prefix}{i}:latest"],
                         "Layers": [f"{d}/layer.tar" for d, _ in layers]})
    add("manifest.json", json.dumps(manifest).encode())
PY
}

say "making the stores"
archive "$W/small.tar" 10 scale/img
archive "$W/large.tar" "$IMAGES" scale/img
archive "$W/one.tar" 1 extra/one
archive "$W/hundred.tar" 100 extra/img
$S --root "$W/small" load -q -i "$W/small.tar" >/dev/null
$S --root "$W/large" load -q -i "$W/large.tar" >/dev/null
for i in $(seq 0 $((CONTAINERS - 1))); do $S --root "$W/large" create "scale/img$((i % IMAGES))" >/dev/null; done
LAYERS=$(find "$W/large/overlay2" -mindepth 1 -maxdepth 1 -not -name l -not -name '.*' | wc -l)
NAMES100=$(for i in $(seq 0 99); do printf 'extra/img%s ' "$i"; done)

# The strata runs. Each store's indexes are warm (a listing and an rmi ran on it), as on a store
# in use.
for size in small large; do
  R=$W/$size
  say "strata, $size store"
  $S --root "$R" images -q >/dev/null
  $S --root "$R" load -q -i "$W/one.tar" >/dev/null && $S --root "$R" rmi extra/one0 >/dev/null
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/strata-$size-a.json" --style basic \
    -n create "$S --root $R create scale/img1" \
    -n images "$S --root $R images -q" \
    -n ps "$S --root $R ps -aq" >&2
  hyperfine --warmup 1 --runs "$RUNS" --export-json "$W/strata-$size-b.json" --style basic \
    -n "layer rm" --prepare "$S --root $R layer create --id $(printf 'ab%.0s' $(seq 32)) >/dev/null" \
    "$S --root $R layer rm $(printf 'ab%.0s' $(seq 32))" >&2
  hyperfine -N --runs "$RMI_RUNS" --export-json "$W/strata-$size-c.json" --style basic \
    -n rmi --prepare "$S --root $R load -q -i $W/one.tar" "$S --root $R rmi extra/one0" \
    -n "rmi x100" --prepare "$S --root $R load -q -i $W/hundred.tar" "$S --root $R rmi $NAMES100" >&2
  $S --root "$R" check >/dev/null
done

# dockerd on a copy of each store (the same images, names and containers).
for size in small large; do
  [ "$DOCKER" = 1 ] || break
  say "docker, $size store"
  cp -a "$W/$size" "$W/docker"
  start_dockerd
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/docker-$size-a.json" --style basic \
    -n create "$DK create scale/img1" \
    -n images "$DK images -q" \
    -n ps "$DK ps -aq" >&2
  hyperfine -N --runs "$RMI_RUNS" --export-json "$W/docker-$size-c.json" --style basic \
    -n rmi --prepare "$DK load -q -i $W/one.tar" "$DK rmi extra/one0" \
    -n "rmi x100" --prepare "$DK load -q -i $W/hundred.tar" "$DK rmi $NAMES100" >&2
  kill "$(cat "$W/docker.pid")"
  while [ -e "$W/docker.pid" ] && kill -0 "$(cat "$W/docker.pid")" 2>/dev/null; do sleep 0.2; done
  rm -rf "$W/docker" "$W/docker.pid"
done

python3 - "$W" "$IMAGES" "$CONTAINERS" "$LAYERS" <<'PY'
import json, sys
w, images, containers, layers = sys.argv[1:]
def load(tool, size):
    out = {}
    for part in "abc":
        try:
            out.update({r["command"]: r for r in json.load(open(f"{w}/{tool}-{size}-{part}.json"))["results"]})
        except FileNotFoundError:
            pass
    return out
s = {size: load("strata", size) for size in ("small", "large")}
d = {size: load("docker", size) for size in ("small", "large")}
ms = lambda r: f'{r["mean"]*1e3:.1f} ± {r["stddev"]*1e3:.1f} ms'
print(f"Large store: {images} images, {containers} containers, {layers} layers; small store: 10 images.")
print()
print("| command | strata small | strata large | strata large/small (target ≤ 2×) | docker small | docker large | docker large/small |")
print("|---|---|---|---|---|---|---|")
for cmd in ("create", "rmi", "rmi x100", "layer rm", "images", "ps"):
    a, b = s["small"][cmd], s["large"][cmd]
    row = f'| `{cmd}` | {ms(a)} | {ms(b)} | {b["mean"]/a["mean"]:.2f}× |'
    if cmd in d["small"] and cmd in d["large"]:
        c, e = d["small"][cmd], d["large"][cmd]
        row += f' {ms(c)} | {ms(e)} | {e["mean"]/c["mean"]:.2f}× |'
    else:
        row += " — | — | — |"
    print(row)
PY
