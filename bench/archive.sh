#!/usr/bin/env bash
# Layer archive benchmark on a real Debian rootfs (debootstrap --variant=minbase bookworm), in
# one run, strata beside its floor and its peers:
#
#   apply       strata layer apply of the rootfs tar, plain and gzip
#   floor       GNU tar -x (and tar -xz) of the same bytes
#   peers       umoci unpack of an OCI layout holding that layer; docker load of a docker-save
#               archive holding it (dockerd 20.10)
#   memory      peak RSS of strata apply
#   changes     layer changes / layer diff of a container layer that changed 10 files over the
#               rootfs, beside docker diff of the same changes
#
# Prints Markdown for BENCHMARKS.md. Needs root; installs debootstrap, umoci, hyperfine and
# docker.io if missing. ROOTFS_TAR=path reuses a rootfs tar; RUNS sets hyperfine's runs;
# BENCH_DIR picks the filesystem everything is written to (default /var/tmp; /dev/shm for tmpfs).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages debootstrap umoci hyperfine docker.io
RUNS=${RUNS:-5}
build_release
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/strata-archive-bench-XXXXXX")
trap bench_cleanup EXIT

# The rootfs, as one plain and one gzip layer tarball.
if [ -n "${ROOTFS_TAR:-}" ]; then
  cp "$ROOTFS_TAR" "$W/rootfs.tar"
else
  debootstrap --variant=minbase bookworm "$W/rootfs" >/dev/null
  tar --numeric-owner --xattrs -C "$W/rootfs" -cf "$W/rootfs.tar" .
  rm -rf "$W/rootfs"
fi
gzip -6 -c "$W/rootfs.tar" > "$W/rootfs.tar.gz"
ENTRIES=$(tar -tf "$W/rootfs.tar" | wc -l)
MB=$(( $(stat -c %s "$W/rootfs.tar") / 1000000 ))

# An OCI layout for umoci and a docker-save archive for docker load, both holding the gzip layer.
python3 - "$W" <<'PY'
import hashlib, json, os, shutil, sys, tarfile, io
w = sys.argv[1]
tar = open(f"{w}/rootfs.tar", "rb").read()
gz = open(f"{w}/rootfs.tar.gz", "rb").read()
diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
def blob(root, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
    open(f"{root}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
oci = f"{w}/oci"
layer = blob(oci, gz); cfg = blob(oci, config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode()
m = blob(oci, manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
  "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(f"{oci}/index.json", "w"))
open(f"{oci}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
with tarfile.open(f"{w}/save.tar", "w") as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    cname = hashlib.sha256(config).hexdigest() + ".json"
    add(cname, config); add("layer/layer.tar", gz)
    add("manifest.json", json.dumps([{"Config": cname, "RepoTags": ["bench:rootfs"], "Layers": ["layer/layer.tar"]}]).encode())
PY

start_dockerd

R=$W/store
prep_strata="rm -rf $R; $S --root $R layer create > $W/id; sync"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/apply.json" --style basic \
  -n "tar -x" --prepare "rm -rf $W/x; mkdir $W/x; sync" "tar -C $W/x -xf $W/rootfs.tar" \
  -n "strata apply" --prepare "$prep_strata" "$S --root $R layer apply \$(cat $W/id) $W/rootfs.tar" \
  -n "tar -xz" --prepare "rm -rf $W/x; mkdir $W/x; sync" "tar -C $W/x -xzf $W/rootfs.tar.gz" \
  -n "strata apply gzip" --prepare "$prep_strata" "$S --root $R layer apply \$(cat $W/id) $W/rootfs.tar.gz" \
  -n "umoci unpack gzip" --prepare "rm -rf $W/bundle; sync" "umoci unpack --image $W/oci:bench $W/bundle" \
  -n "docker load gzip" --prepare "$DK rmi -f bench:rootfs >/dev/null 2>&1 || true; sync" "$DK load -q -i $W/save.tar" \
  >&2

# Peak memory of one apply, plain and gzip.
rm -rf "$R"; id=$($S --root "$R" layer create)
MEM=$( { /usr/bin/time -f %M "$S" --root "$R" layer apply "$id" "$W/rootfs.tar" >/dev/null; } 2>&1 )
rm -rf "$R"; id=$($S --root "$R" layer create)
MEMGZ=$( { /usr/bin/time -f %M "$S" --root "$R" layer apply "$id" "$W/rootfs.tar.gz" >/dev/null; } 2>&1 )

# A container layer that changed 10 files of the rootfs.
BASE=$id
C=$($S --root "$R" layer create --parent "$BASE")
M=$($S --root "$R" layer mount "$C")
for f in etc/hostname etc/passwd etc/group etc/os-release etc/debian_version usr/bin/ls usr/bin/cat bin/sh etc/shells etc/profile; do
  [ -e "$M/$f" ] && echo "changed" >> "$M/$f"
done
$S --root "$R" layer umount "$C"
# The same change in a dockerd container, for docker diff.
$DK load -q -i "$W/save.tar" >/dev/null 2>&1 || true
DC=$($DK create bench:rootfs)
DM=$(basename "$(dirname "$($DK inspect -f '{{.GraphDriver.Data.UpperDir}}' "$DC")")")
DMERGED=$($S --root "$W/docker" layer mount "$DM")
for f in etc/hostname etc/passwd etc/group etc/os-release etc/debian_version usr/bin/ls usr/bin/cat bin/sh etc/shells etc/profile; do
  [ -e "$DMERGED/$f" ] && echo "changed" >> "$DMERGED/$f"
done
$S --root "$W/docker" layer umount "$DM"
hyperfine --runs 20 --warmup 2 --export-json "$W/changes.json" --style basic -N \
  -n "strata layer changes" "$S --root $R layer changes $C" \
  -n "strata layer diff" "$S --root $R layer diff $C -o $W/c.tar" \
  -n "docker diff" "$DK diff $DC" \
  >&2

python3 - "$W/apply.json" "$W/changes.json" "$MEM" "$MEMGZ" "$ENTRIES" "$MB" <<'PY'
import json, sys
apply_runs, change_runs = (json.load(open(p))["results"] for p in sys.argv[1:3])
mem, memgz, entries, mb = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
a = dict(zip(["tar", "strata", "tarz", "strataz", "umoci", "docker"], apply_runs))
c = dict(zip(["changes", "diff", "docker diff"], change_runs))
ms = lambda r: f'{r["mean"]*1e3:.0f} ± {r["stddev"]*1e3:.0f} ms'
x = lambda r, ref: r["mean"] / ref["mean"]
print(f"Debian bookworm minbase rootfs: {entries} entries, {mb} MB uncompressed.\n")
print("| what | mean | ratio |")
print("|---|---|---|")
print(f'| GNU tar -x, plain (floor) | {ms(a["tar"])} | 1.00× |')
print(f'| strata layer apply, plain | {ms(a["strata"])} | {x(a["strata"], a["tar"]):.2f}× tar -x (target ≤ 1.2×) |')
print(f'| GNU tar -xz, gzip | {ms(a["tarz"])} | 1.00× |')
print(f'| strata layer apply, gzip | {ms(a["strataz"])} | {x(a["strataz"], a["tarz"]):.2f}× tar -xz |')
print(f'| umoci unpack, gzip | {ms(a["umoci"])} | strata is {x(a["umoci"], a["strataz"]):.1f}× faster (target ≥ 2×) |')
print(f'| docker load, gzip | {ms(a["docker"])} | strata is {x(a["docker"], a["strataz"]):.1f}× faster |')
print(f"\nPeak memory of strata apply: {mem/1024:.1f} MiB plain, {memgz/1024:.1f} MiB gzip (target < 64 MiB).\n")
print("A container layer that changed 10 files of that rootfs:\n")
print("| what | mean |")
print("|---|---|")
for k in ["changes", "diff", "docker diff"]:
    label = k if k == "docker diff" else f"strata layer {k}"
    print(f"| {label} | {ms(c[k])} |")
PY
