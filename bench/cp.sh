#!/usr/bin/env bash
# `cp`, strata beside `docker cp` (dockerd 20.10) and `podman cp`, in one run: a 200 MB tree of
# 7,000 files (70 directories of 100 files of 29 KiB) copied into a fresh stopped container of
# the Debian image (made in --prepare), and out of one again (into a directory removed in
# --prepare).
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine, docker.io, podman, runc if missing. Knobs: RUNS=10, BENCH_DIR, ROOTFS_TAR.
set -euo pipefail
trap 'echo "bench/cp.sh: failed at line $LINENO" >&2' ERR
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
bench_with_peers cp

start_peers_with_debian
say "the tree"
python3 - "$W/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(70):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d}/f{f}", "wb") as out:
            out.write(os.urandom(29 * 1024))
PY
echo "$(find "$W/tree" -type f | wc -l) files, $(du -sh "$W/tree" | cut -f1)" >&2
$S --root "$R" create --name cc deb:1 true >/dev/null
$DK create --name cc deb:1 true >/dev/null
$PODMAN create --name cc deb:1 true >/dev/null
for t in strata docker podman; do
  printf '#!/bin/sh\nrm -rf %s\n' "$W/out-$t" > "$W/clean-$t"
  case $t in strata) T="$S --root $R" ;; docker) T="$DK" ;; podman) T="$PODMAN" ;; esac
  printf '#!/bin/sh\n%s rm -f ci >/dev/null 2>&1\n%s create --name ci deb:1 true >/dev/null\n' "$T" "$T" > "$W/fresh-$t"
  chmod +x "$W/clean-$t" "$W/fresh-$t"
done

say "cp into a container"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RES/in.json" --style basic \
  -n "strata cp in" --prepare "$W/fresh-strata" "$S --root $R cp $W/tree ci:/" \
  -n "docker cp in" --prepare "$W/fresh-docker" "$DK cp $W/tree ci:/" \
  -n "podman cp in" --prepare "$W/fresh-podman" "$PODMAN cp $W/tree ci:/" >&2
for t in strata docker podman; do
  case $t in strata) T="$S --root $R" ;; docker) T="$DK" ;; podman) T="$PODMAN" ;; esac
  $T cp "$W/tree" cc:/ >/dev/null
done
say "cp out of a container"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RES/out.json" --style basic \
  -n "strata cp out" --prepare "$W/clean-strata" "$S --root $R cp cc:/tree $W/out-strata" \
  -n "docker cp out" --prepare "$W/clean-docker" "$DK cp cc:/tree $W/out-docker" \
  -n "podman cp out" --prepare "$W/clean-podman" "$PODMAN cp cc:/tree $W/out-podman" >&2
for t in strata docker podman; do
  n=$(find "$W/out-$t" -type f | wc -l)
  [ "$n" = 7000 ] || { echo "$t copied out $n files" >&2; exit 1; }
done

python3 - "$RES" <<'PY'
import json, sys
res = sys.argv[1]
rows = {}
for part in ("in", "out"):
    for r in json.load(open(f"{res}/{part}.json"))["results"]:
        rows[r["command"]] = r
ms = lambda r: f'{r["mean"]*1e3:.0f} ± {r["stddev"]*1e3:.0f} ms'
print("| case | strata | docker | podman | strata is (target ≥ 2× faster than docker) |")
print("|---|---|---|---|---|")
for case in ("cp in", "cp out"):
    s, d, p = (rows[f"{t} {case}"] for t in ("strata", "docker", "podman"))
    print(f"| `{case}` | {ms(s)} | {ms(d)} | {ms(p)} | {d['mean']/s['mean']:.2f}× faster than docker, {p['mean']/s['mean']:.2f}× than podman |")
PY
