#!/usr/bin/env bash
# Detached containers, strata beside dockerd 20.10 and podman, all three running runc, in one run:
#
#   run -d   `run -d deb:1 sleep 1000`, until the command returns (the container runs); the
#            last run's container is killed and removed in --prepare
#   exec     `exec C true` in a running container, beside its floor: `runc exec` of the same
#            container (what every one of the three runs underneath)
#   stop     `stop` of a container that exits on SIGTERM (started in --prepare)
#   logs     `logs` of a container that wrote 100,000 lines (`seq 100000`), to /dev/null
#
# The image is the Debian bookworm minbase rootfs, imported by each tool as deb:1. dockerd and
# podman get private roots in the scratch directory, no network and runc; podman gets the
# ulimits bench/containers.sh explains.
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine, docker.io, podman, runc if missing. Knobs: RUNS=20, BENCH_DIR, ROOTFS_TAR.
set -euo pipefail
trap 'echo "bench/detached.sh: failed at line $LINENO" >&2' ERR
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
RUNS=${RUNS:-20}
bench_with_peers det # short: podman wants a run root under 50 characters
script() { cat > "$1"; chmod +x "$1"; } # hyperfine -N runs --prepare without a shell

start_peers_with_debian

# Each tool's commands, by the same names.
for t in strata docker podman; do
  case $t in
    strata) T="$S --root $R"; RUN="$T run" ;;
    docker) T="$DK"; RUN="$T run --network none" ;;
    podman) T="$PODMAN"; RUN="$T run --network none $PLIMITS" ;;
  esac
  [ $t = podman ] && RMF="rm -f -t 0" || RMF="rm -f"
  script "$W/kill-b-$t" <<EOF
#!/bin/sh
$T $RMF bb >/dev/null 2>&1 || true
EOF
  script "$W/start-s-$t" <<EOF
#!/bin/sh
$T $RMF ss >/dev/null 2>&1 || true
$RUN -d --name ss deb:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null
EOF
  echo "$RUN" > "$W/run-$t"
done

say "run -d"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$RES/run.json" --style basic \
  -n "strata run -d" --prepare "$W/kill-b-strata" "$(cat "$W/run-strata") -d --name bb deb:1 sleep 1000" \
  -n "docker run -d" --prepare "$W/kill-b-docker" "$(cat "$W/run-docker") -d --name bb deb:1 sleep 1000" \
  -n "podman run -d" --prepare "$W/kill-b-podman" "$(cat "$W/run-podman") -d --name bb deb:1 sleep 1000" >&2
for t in strata docker podman; do "$W/kill-b-$t"; done

say "exec"
for t in strata docker podman; do "$W/start-s-$t"; done
SS=$($S --root "$R" ps -q --no-trunc --filter name=ss)
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$RES/exec.json" --style basic \
  -n "strata exec" "$S --root $R exec ss true" \
  -n "runc exec" "runc --root $R/strata/runtime/runc exec $SS true" \
  -n "docker exec" "$DK exec ss true" \
  -n "podman exec" "$PODMAN exec ss true" >&2

say "stop"
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$RES/stop.json" --style basic \
  -n "strata stop" --prepare "$W/start-s-strata" "$S --root $R stop ss" \
  -n "docker stop" --prepare "$W/start-s-docker" "$DK stop ss" \
  -n "podman stop" --prepare "$W/start-s-podman" "$PODMAN stop ss" >&2

say "logs of 100,000 lines"
$S --root "$R" run -d --name ll deb:1 seq 100000 >/dev/null && $S --root "$R" wait ll >/dev/null
$DK run --network none -d --name ll deb:1 seq 100000 >/dev/null && $DK wait ll >/dev/null
$PODMAN run --network none $PLIMITS -d --name ll deb:1 seq 100000 >/dev/null && $PODMAN wait ll >/dev/null
for t in strata docker podman; do
  case $t in strata) T="$S --root $R" ;; docker) T="$DK" ;; podman) T="$PODMAN" ;; esac
  lines=$($T logs ll | wc -l)
  [ "$lines" = 100000 ] || { echo "$t logs gave $lines lines" >&2; exit 1; }
done
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$RES/logs.json" --style basic --output null \
  -n "strata logs" "$S --root $R logs ll" \
  -n "docker logs" "$DK logs ll" \
  -n "podman logs" "$PODMAN logs ll" >&2

python3 - "$RES" <<'PY'
import json, sys
res = sys.argv[1]
rows = {}
for part in ("run", "exec", "stop", "logs"):
    for r in json.load(open(f"{res}/{part}.json"))["results"]:
        rows[r["command"]] = r
ms = lambda r: f'{r["mean"]*1e3:.1f} ± {r["stddev"]*1e3:.1f} ms'
print("| case | strata | docker | podman | strata is |")
print("|---|---|---|---|---|")
for case, target in (("run -d", "≥ 2× faster than docker, faster than podman"),
                     ("exec", "≥ 2× faster than docker, faster than podman"), ("stop", ""), ("logs", "at least as fast as docker")):
    s, d, p = (rows[f"{t} {case}"] for t in ("strata", "docker", "podman"))
    ratio = f'{d["mean"]/s["mean"]:.2f}× faster than docker, {p["mean"]/s["mean"]:.2f}× than podman'
    print(f"| `{case}` | {ms(s)} | {ms(d)} | {ms(p)} | {ratio}{' (target ' + target + ')' if target else ''} |")
f = rows["runc exec"]
print(f"\n`runc exec` of the same container alone (the floor of all three): {ms(f)}; strata's exec is {rows['strata exec']['mean']/f['mean']:.2f}× it.")
PY
