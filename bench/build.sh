#!/usr/bin/env bash
# `build`, strata beside docker's legacy builder (DOCKER_BUILDKIT=0), docker's BuildKit
# (DOCKER_BUILDKIT=1, dockerd 20.10's own), `buildah bud` and `podman build`, in one run:
#
#   docs cold      the documents' Dockerfile (FROM deb:1, RUN echo "Hello World" > /tmp/newfile),
#                  --no-cache
#   ctx cold       a 10-step Dockerfile (ENV, WORKDIR, COPY of a 5,000-file context, RUN,
#                  LABEL, ENV, EXPOSE, CMD, USER), --no-cache
#   ctx cached     the same, everything in the cache
#   ctx one file   the same after one file of the context changed (in --prepare)
#
# The base is the Debian bookworm minbase rootfs, imported by each tool as deb:1. dockerd,
# podman and buildah get private roots in the scratch directory; RUN has no network in all.
#
# Prints Markdown for BENCHMARKS.md on stdout, progress on stderr. Needs root; installs
# hyperfine, docker.io, podman, buildah, runc if missing. Knobs: RUNS=5, BENCH_DIR, ROOTFS_TAR.
set -euo pipefail
trap 'echo "bench/build.sh: failed at line $LINENO" >&2' ERR
cd "$(dirname "$0")/.."
. bench/lib.sh
require_root
need_packages buildah
RUNS=${RUNS:-5}
bench_with_peers bld

start_peers_with_debian
BUILDAH="env TMPDIR=$W/ptmp buildah --root $W/podman --runroot $W/r --storage-driver overlay"

say "contexts"
DOCS=$W/docs CTX=$W/ctx
mkdir -p "$DOCS" "$CTX"
printf 'FROM deb:1\nRUN echo "Hello World" > /tmp/newfile\n' > "$DOCS/Dockerfile"
python3 - "$CTX" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(50):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d}/f{f}", "w") as out:
            out.write(f"{d}/{f} " * 120 + "\n")
open(f"{root}/Dockerfile", "w").write("""FROM deb:1
ENV APP=/app
WORKDIR /app
COPY . /app/
RUN echo built > /built
LABEL a=b
ENV X=1
EXPOSE 80
CMD ["cat", "/built"]
USER nobody
""")
PY
echo "$(find "$CTX" -type f | wc -l) files, $(du -sh "$CTX" | cut -f1)" >&2
cat > "$W/touch-one" <<EOF
#!/bin/sh
date +%s%N > $CTX/d7/f7
EOF
chmod +x "$W/touch-one"

# The command of each tool for a context, by one name.
cmds() { # $1 = tool, $2 = extra flags, $3 = context
  case $1 in
    strata) echo "$S --root $R build -q $2 $3" ;;
    legacy) echo "env DOCKER_BUILDKIT=0 $DK build -q --network none $2 $3" ;;
    buildkit) echo "env DOCKER_BUILDKIT=1 $DK build -q --network none $2 $3" ;;
    buildah) echo "$BUILDAH bud -q --layers --network none $2 $3" ;;
    podman) echo "$PODMAN build -q --layers --network none $2 $3" ;;
  esac
}
TOOLS="strata legacy buildkit buildah podman"
bench() { # $1 = name, $2 = extra flags, $3 = context, $4 = prepare script or ""
  local args=()
  for t in $TOOLS; do
    args+=(-n "$t")
    [ -n "$4" ] && args+=(--prepare "$4")
    args+=("$(cmds $t "$2" "$3")")
  done
  say "$1"
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RES/$1.json" --style basic --output null "${args[@]}" >&2
}
bench docs-cold --no-cache "$DOCS" ""
bench ctx-cold --no-cache "$CTX" ""
for t in $TOOLS; do $(cmds $t "" "$CTX") >/dev/null; done
bench ctx-cached "" "$CTX" ""
bench ctx-one-file "" "$CTX" "$W/touch-one"

python3 - "$RES" <<'PY'
import json, sys
res = sys.argv[1]
cases = [("docs-cold", "the documents' Dockerfile, --no-cache", "≥ 3× faster than legacy"),
         ("ctx-cold", "10 steps, COPY of 5,000 files, --no-cache", "≥ 3× faster than legacy"),
         ("ctx-cached", "the same, fully cached", "≥ 5× faster than legacy, faster than BuildKit"),
         ("ctx-one-file", "the same, one file changed", "")]
ms = lambda r: f'{r["mean"]*1e3:.0f} ms'
print("| case | strata | docker legacy | docker BuildKit | buildah bud | podman build | strata is (target) |")
print("|---|---|---|---|---|---|---|")
for name, what, target in cases:
    rows = {r["command"]: r for r in json.load(open(f"{res}/{name}.json"))["results"]}
    s = rows["strata"]["mean"]
    cells = [ms(rows[t]) for t in ("strata", "legacy", "buildkit", "buildah", "podman")]
    ratio = f'{rows["legacy"]["mean"]/s:.1f}× legacy, {rows["buildkit"]["mean"]/s:.1f}× BuildKit, {rows["buildah"]["mean"]/s:.1f}× buildah, {rows["podman"]["mean"]/s:.1f}× podman'
    print(f"| {what} | " + " | ".join(cells) + f" | {ratio}{' (' + target + ')' if target else ''} |")
PY
