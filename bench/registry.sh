#!/usr/bin/env bash
# Registry benchmark: pulling one multi-layer image from a local registry, strata beside its
# peers in one run, each into an empty store:
#
#   image     the debootstrap Debian bookworm minbase rootfs split into 8 layers by size, loaded
#             into dockerd and pushed by it (gzip, as images on registries are)
#   loopback  `strata pull`, `docker pull`, `podman pull`, `ctr pull` (containerd, unpacked),
#             `skopeo copy` + `umoci unpack`, from docker-registry (distribution 2.8) on
#             127.0.0.1; strata's CPU time and peak RSS
#   push      `strata push` and `docker push` of the same image, each to an empty registry
#   link      the same pull through a link of 200 Mbit/s with 20 ms of delay each way (a
#             shaping proxy, bench/src/shaper.rs: this kernel has no netem), against the
#             larger of "download alone" (curl fetching every blob, 3 at a time, through the
#             same link) and "apply alone" (strata's loopback pull)
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs what
# is missing. Knobs:
#   RUNS=3                                  runs per case (medians are reported)
#   BENCH_DIR=/var/tmp/strata-bench         where the work happens
#   ROOTFS_TAR=/var/tmp/strata-debian-rootfs.tar  the Debian rootfs (debootstrap if absent)
#
# No store is deleted while a pull is timed: each run's store is moved aside first.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages hyperfine docker.io podman time debootstrap docker-registry containerd skopeo umoci curl
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/strata-bench}
ROOTFS_TAR=${ROOTFS_TAR:-/var/tmp/strata-debian-rootfs.tar}
build_release -p strata-bench
mkdir -p "$BENCH_DIR"
W=$(mktemp -d "$BENCH_DIR/rg.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${CTRD_PID:-}" ] && kill $CTRD_PID 2>/dev/null; bench_cleanup; true' EXIT
say() { echo "== $*" >&2; }

if [ ! -f "$ROOTFS_TAR" ]; then
  say "debootstrap (once)"
  debootstrap --variant=minbase bookworm "$W/debootstrap" >/dev/null
  tar --numeric-owner --xattrs -C "$W/debootstrap" -cf "$ROOTFS_TAR.part" . && mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
fi

say "eight layers from the rootfs"
mkdir -p "$W/rootfs" "$W/layers"
tar --numeric-owner --xattrs -C "$W/rootfs" -xf "$ROOTFS_TAR"
python3 - "$W/rootfs" "$W/layers" <<'PY'
import os, sys
root, out = sys.argv[1], sys.argv[2]
dirs, files = [], []
for base, ds, fs in os.walk(root):
    rel = os.path.relpath(base, root)
    if rel != ".":
        dirs.append(rel)
    for f in fs:
        p = os.path.join(base, f)
        st = os.lstat(p)
        files.append((os.path.relpath(p, root), st.st_size, st.st_nlink > 1))
# Every directory and every hard-linked file in the first layer (a link's target must be in
# its own layer); the other files split into eight layers of about equal size, in path order.
groups = [[] for _ in range(8)]
groups[0] = dirs + [f for f, _, linked in files if linked]
rest = [(f, s) for f, s, linked in files if not linked]
total = sum(s for _, s in rest) or 1
acc = 0
for f, s in rest:
    groups[min(7, acc * 8 // total)].append(f)
    acc += s
for i, g in enumerate(groups):
    with open(os.path.join(out, f"list{i}"), "w") as fh:
        fh.write("\n".join(g) + "\n")
PY
for i in $(seq 0 7); do
  tar --numeric-owner --xattrs --no-recursion -C "$W/rootfs" -cf "$W/layers/layer$i.tar" -T "$W/layers/list$i"
done
python3 - "$W/layers" "$W/image.tar" <<'PY'
import hashlib, json, os, sys, tarfile
d, out = sys.argv[1], sys.argv[2]
layers = [os.path.join(d, f"layer{i}.tar") for i in range(8)]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
diff_ids = ["sha256:" + sha(p) for p in layers]
config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
    "config": {"Cmd": ["/bin/bash"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(8)]}).encode()
cid = hashlib.sha256(config).hexdigest()
with tarfile.open(out, "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data)
        import io; t.addfile(info, io.BytesIO(data))
    add(f"{cid}.json", config)
    for i, p in enumerate(layers):
        t.add(p, f"l{i}/layer.tar")
    add("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["bench/debian:8"], "Layers": [f"l{i}/layer.tar" for i in range(8)]}]).encode())
PY
MB=$(du -m "$W/image.tar" | cut -f1)

say "registry, and dockerd pushing the image"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: 127.0.0.1:$PORT
  secret: bench
EOF
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REF=127.0.0.1:$PORT/bench/debian:8
start_dockerd
$DK load -q -i "$W/image.tar" >/dev/null
$DK tag bench/debian:8 "$REF"
$DK push "$REF" >/dev/null
$DK rmi bench/debian:8 "$REF" >/dev/null

# time LABEL PREPARE COMMAND: RUNS runs of COMMAND, PREPARE before each (untimed); seconds to $W/t.LABEL
timed() {
  local label=$1 prepare=$2 cmd=$3
  : > "$W/t.$label"
  for i in $(seq 1 "$RUNS"); do
    RUN=$i eval "$prepare" >/dev/null 2>&1 || true
    local s e
    s=$(date +%s.%N)
    RUN=$i eval "$cmd" >/dev/null 2>"$W/err.$label" || { echo "$label failed:" >&2; cat "$W/err.$label" >&2; exit 1; }
    e=$(date +%s.%N)
    echo "$e - $s" | bc >> "$W/t.$label"
    say "$label run $i: $(tail -1 "$W/t.$label") s"
  done
}
aside() { [ -e "$1" ] && mv "$1" "$W/trash.$RANDOM$RANDOM" || true; }

say "pulls over loopback"
export DOCKER_CONFIG=$W/no-credentials
mkdir -p "$DOCKER_CONFIG" && echo "{}" > "$DOCKER_CONFIG/config.json"
timed strata 'aside $W/st' "/usr/bin/time -f '%e %U %S %M' -a -o $W/strata.time $S --root $W/st pull -q $REF"
timed docker "$DK rmi $REF" "$DK pull -q $REF"
timed podman "aside $W/pod; aside $W/podrun" "podman --root $W/pod --runroot $W/podrun pull -q --tls-verify=false $REF"
cat > "$W/containerd.toml" <<EOF
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
EOF
ctrd() { # a containerd on a fresh root for run $RUN
  [ -n "${CTRD_PID:-}" ] && kill "$CTRD_PID" 2>/dev/null && wait "$CTRD_PID" 2>/dev/null || true
  grep -o " $W/ctr[^ ]*" /proc/self/mountinfo | tac | xargs -r -n1 umount -l 2>/dev/null || true
  containerd --config "$W/containerd.toml" --root "$W/ctr$RUN" --state "$W/ctrs$RUN" --address "$W/ctr$RUN.sock" >/dev/null 2>&1 &
  CTRD_PID=$!
  for _ in $(seq 50); do ctr -a "$W/ctr$RUN.sock" version >/dev/null 2>&1 && return 0; sleep 0.1; done
}
timed ctr 'ctrd' "ctr -a $W/ctr\$RUN.sock -n bench images pull --plain-http $REF"
timed skopeo 'aside $W/oci; aside $W/bundle' "skopeo copy -q --src-tls-verify=false docker://$REF oci:$W/oci:8 && umoci unpack --image $W/oci:8 $W/bundle"

say "pushes, each to an empty registry"
# push_registry: a fresh registry for run $RUN on $PUSH_PORT (the last one stopped)
push_registry() {
  [ -n "${PUSH_PID:-}" ] && kill "$PUSH_PID" 2>/dev/null && wait "$PUSH_PID" 2>/dev/null || true
  PUSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -e "s|rootdirectory: .*|rootdirectory: $W/pushreg$RUN|" -e "s|addr: .*|addr: 127.0.0.1:$PUSH_PORT|" "$W/registry.yml" > "$W/pushreg.yml"
  docker-registry serve "$W/pushreg.yml" > /dev/null 2>&1 &
  PUSH_PID=$!
  for _ in $(seq 50); do curl -s "http://127.0.0.1:$PUSH_PORT/v2/" >/dev/null && break; sleep 0.1; done
  echo "$PUSH_PORT" > "$W/push.port"
}
timed strata-push 'push_registry; $S --root $W/st tag $REF 127.0.0.1:$PUSH_PORT/bench/pushed:8' "$S --root $W/st push -q 127.0.0.1:\$(cat $W/push.port)/bench/pushed:8"
timed docker-push 'push_registry; $DK tag $REF 127.0.0.1:$PUSH_PORT/bench/pushed:8' "$DK push 127.0.0.1:\$(cat $W/push.port)/bench/pushed:8"
timed strata-push1 'push_registry; $S --root $W/st tag $REF 127.0.0.1:$PUSH_PORT/bench/pushed:8' "$S --root $W/st push -q --compression-level 1 127.0.0.1:\$(cat $W/push.port)/bench/pushed:8"
timed strata-pushz 'push_registry; $S --root $W/st tag $REF 127.0.0.1:$PUSH_PORT/bench/pushed:8' "$S --root $W/st push -q --compression zstd 127.0.0.1:\$(cat $W/push.port)/bench/pushed:8"
kill "$PUSH_PID" 2>/dev/null || true

say "the limited link"
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/shaper" "127.0.0.1:$SPORT" "127.0.0.1:$PORT" 200 20 &
sleep 0.5
SREF=127.0.0.1:$SPORT/bench/debian:8
timed strata-link 'aside $W/sl' "$S --root $W/sl pull -q $SREF"
MANIFEST=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$PORT/v2/bench/debian/manifests/8")
BLOBS=$(echo "$MANIFEST" | python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["layers"]))')
echo "$BLOBS" | tr ' ' '\n' | sed "s|^|http://127.0.0.1:$SPORT/v2/bench/debian/blobs/|" > "$W/blob-urls"
timed download-link ':' "xargs -P 3 -n 1 curl -s -o /dev/null < $W/blob-urls"

python3 - "$W" "$MB" <<'PY'
import statistics, sys
w, mb = sys.argv[1], sys.argv[2]
t = lambda k: statistics.median(float(x) for x in open(f"{w}/t.{k}") if x.strip())
runs = [l.split() for l in open(f"{w}/strata.time") if l.strip()]
cpu = statistics.median(float(r[1]) + float(r[2]) for r in runs)
rss = max(int(r[3]) for r in runs) / 1024
s = t("strata")
print(f"Pull of a {mb} MB image (Debian bookworm minbase in 8 layers, gzip) from distribution 2.8 on loopback, into an empty store; median of the runs:")
print()
print("| tool | time | strata is |")
print("|---|---|---|")
print(f"| strata pull | {s:.2f} s (CPU {cpu:.2f} s, peak RSS {rss:.1f} MiB) | |")
for k, name in (("docker", "docker pull (dockerd 20.10)"), ("podman", "podman pull"), ("ctr", "ctr pull (containerd 1.6, unpacked)"), ("skopeo", "skopeo copy + umoci unpack")):
    print(f"| {name} | {t(k):.2f} s | {t(k)/s:.2f}× faster |")
print()
link, dl = t("strata-link"), t("download-link")
bound = max(dl, s)
print("Through a 200 Mbit/s link with 20 ms of delay each way:")
print()
print("| what | time | |")
print("|---|---|---|")
print(f"| download alone (curl, 3 at a time) | {dl:.2f} s | |")
print(f"| apply alone (strata's loopback pull) | {s:.2f} s | |")
print(f"| strata pull | {link:.2f} s | {link/bound:.2f}× the larger (target ≤ 1.2×) |")
print()
sp, dp = t("strata-push"), t("docker-push")
print("Push of the same image to an empty registry (every layer compressed with gzip and uploaded):")
print()
print("| tool | time | strata is |")
print("|---|---|---|")
print(f"| strata push (gzip level 6, as docker) | {sp:.2f} s | |")
print(f"| docker push (dockerd 20.10) | {dp:.2f} s | {dp/sp:.2f}× faster (target ≥ 2×) |")
p1, pz = t("strata-push1"), t("strata-pushz")
print(f"| strata push --compression-level 1 (blobs about a fifth larger) | {p1:.2f} s | {dp/p1:.2f}× faster than docker |")
print(f"| strata push --compression zstd (level 3, an OCI manifest) | {pz:.2f} s | {dp/pz:.2f}× faster than docker |")
PY
