#!/usr/bin/env bash
# Volumes, strata beside dockerd 20.10 and podman in one run: `run --rm -v /usr deb:1 true`, a
# container with a fresh anonymous volume over the Debian image's /usr, which is first filled
# with the image's files there (the copy-up: ~7,000 files), then removed with the container;
# and the same with a named volume that already holds data (no copy) for the fixed cost.
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine, docker.io, podman, runc if missing. Knobs: RUNS=10, BENCH_DIR, ROOTFS_TAR.
set -euo pipefail
trap 'echo "bench/volumes.sh: failed at line $LINENO" >&2' ERR
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
bench_with_peers volumes

start_peers_with_debian
ST="$S --root $R"
echo "/usr holds $($ST run --rm deb:1 sh -c 'find /usr | wc -l') entries" >&2
$ST run --rm -v full:/usr deb:1 true >/dev/null
$DK run --rm --network none -v full:/usr deb:1 true >/dev/null
$PODMAN run --rm --network none $PLIMITS -v full:/usr deb:1 true >/dev/null

say "run with a fresh anonymous volume over /usr (copy-up), removed with the container"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RES/anon.json" --style basic \
  -n "strata anonymous" "$ST run --rm -v /usr deb:1 true" \
  -n "docker anonymous" "$DK run --rm --network none -v /usr deb:1 true" \
  -n "podman anonymous" "$PODMAN run --rm --network none $PLIMITS -v /usr deb:1 true" >&2
say "run with a named volume that holds data already (no copy)"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RES/named.json" --style basic \
  -n "strata named" "$ST run --rm -v full:/usr deb:1 true" \
  -n "docker named" "$DK run --rm --network none -v full:/usr deb:1 true" \
  -n "podman named" "$PODMAN run --rm --network none $PLIMITS -v full:/usr deb:1 true" >&2
for T in "$ST" "$DK" "$PODMAN"; do
  left=$($T volume ls -q | grep -vc '^full$' || true)
  [ "$left" = 0 ] || { echo "$T left $left anonymous volumes" >&2; exit 1; }
done

python3 - "$RES" <<'PY'
import json, sys
res = sys.argv[1]
rows = {}
for part in ("anon", "named"):
    for r in json.load(open(f"{res}/{part}.json"))["results"]:
        rows[r["command"]] = r
ms = lambda r: f'{r["mean"]*1e3:.0f} ± {r["stddev"]*1e3:.0f} ms'
print("| case | strata | docker | podman | strata is |")
print("|---|---|---|---|---|")
for case, label in (("anonymous", "`run --rm -v /usr` (copy-up)"), ("named", "`run --rm -v full:/usr` (no copy)")):
    s, d, p = (rows[f"{t} {case}"] for t in ("strata", "docker", "podman"))
    print(f"| {label} | {ms(s)} | {ms(d)} | {ms(p)} | {d['mean']/s['mean']:.2f}× faster than docker, {p['mean']/s['mean']:.2f}× than podman |")
PY
