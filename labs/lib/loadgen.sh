#!/usr/bin/env bash
# Bounded load for the labs, loopback only. One curl process per batch
# (keep-alive, --rate), so a generator costs little CPU on a shared machine.
#
#   loadgen.sh get RPS COUNT URL [curl args...]    COUNT GETs of URL at RPS per second
#
# URL may contain curl globs ([1-36]); "?lg=[1-COUNT]" is appended to make COUNT requests.
set -uo pipefail
mode=$1; shift
case $mode in
get)
    rps=$1 count=$2 url=$3; shift 3
    case $url in 127.0.0.1*|http://127.0.0.1*|http://localhost*) ;; *) echo "loadgen: loopback only: $url" >&2; exit 2 ;; esac
    sep='?'; case $url in *\?*) sep='&' ;; esac
    exec curl -s -o /dev/null --rate "$rps/s" -m 10 "$@" "$url${sep}lg=[1-$count]"
    ;;
*) echo "usage: loadgen.sh get RPS COUNT URL [curl args]" >&2; exit 2 ;;
esac
