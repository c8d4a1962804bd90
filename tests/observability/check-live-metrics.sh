#!/usr/bin/env bash
# Reports the metrics that rules and dashboards read but no service exports.
#
#   check-live-metrics.sh [--strict] SOURCE...
#
# SOURCE is a directory of /metrics dumps (one file per service, named
# <service>.prom), one such file, or a live endpoint as NAME=URL (or a bare
# URL on the lab's ports 8080-8086, named after the service there), e.g.
#   check-live-metrics.sh wallet=http://127.0.0.1:8083/metrics ...
#   check-live-metrics.sh "$LAB_DIR/scrapes"
# Exit 0 when every metric read by observability/prometheus/rules and
# observability/grafana/dashboards is exported by at least one source;
# 1 otherwise, naming each missing metric and where it is read. A
# service's contract metrics it does not export, and label sets that
# differ from observability/metrics-contract.json, are warnings (failures
# with --strict). 2 on bad usage or an unreachable source.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"

strict=()
sources=()
for a in "$@"; do
    case $a in
    --strict) strict=(--strict) ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) sources+=("$a") ;;
    esac
done
[ ${#sources[@]} -gt 0 ] || { echo "usage: $0 [--strict] DIR|FILE|[NAME=]URL..." >&2; exit 2; }
obs_node_ready || exit 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=()
port_name() {
    case $1 in
    8080) echo gateway ;; 8081) echo trading-api ;; 8082) echo matching ;; 8083) echo wallet ;;
    8084) echo risk ;; 8085) echo catalog ;; 8086) echo order ;; *) echo "port$1" ;;
    esac
}
for s in "${sources[@]}"; do
    case $s in
    *=http://*|*=https://*|http://*|https://*)
        if [[ $s == *=* && $s != http* ]]; then name=${s%%=*}; url=${s#*=}; else
            url=$s; port=$(echo "$url" | sed -nE 's#^https?://[^/:]+:([0-9]+).*#\1#p'); name=$(port_name "${port:-0}"); fi
        if ! curl -fsS --max-time 5 "$url" -o "$tmp/$name.prom"; then
            echo "cannot scrape $name at $url" >&2; exit 2
        fi
        files+=("$tmp/$name.prom") ;;
    *)
        if [ -d "$s" ]; then
            for f in "$s"/*; do [ -f "$f" ] && files+=("$f"); done
        elif [ -f "$s" ]; then files+=("$s")
        else echo "no such file or directory: $s" >&2; exit 2; fi ;;
    esac
done
[ ${#files[@]} -gt 0 ] || { echo "no scrape dumps found in ${sources[*]}" >&2; exit 2; }
node "$HERE/check.mjs" live "${strict[@]}" "${files[@]}"
