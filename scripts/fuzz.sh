#!/usr/bin/env bash
# Builds every fuzz/fuzz_<name>.c as a libFuzzer target (clang, ASan+UBSan)
# and runs each for SECONDS (default 60; the test suite uses a short smoke).
#   fuzz.sh [SECONDS] [NAME...]
# Crashes are written to fuzz/artifacts/; the corpus grows in build/fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; shift || true
out=build/fuzz
mkdir -p "$out/obj" fuzz/artifacts
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -Ilibcommon/include -I/usr/include/postgresql -I/usr/include/cjson
        -fsanitize=address,undefined -fno-sanitize-recover=all"
LIBS="-lmicrohttpd -lcjson -lrdkafka -lhiredis -lpq -ljwt -lcurl -lssl -lcrypto -lsodium -lm -pthread"
objs=()
for src in libcommon/src/*.c; do
    o=$out/obj/$(basename "$src" .c).o
    if [ ! -f "$o" ] || [ "$src" -nt "$o" ]; then
        # shellcheck disable=SC2086
        clang $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$o"
    fi
    objs+=("$o")
done
names=("$@")
[ ${#names[@]} -eq 0 ] && for f in fuzz/fuzz_*.c; do n=$(basename "$f" .c); names+=("${n#fuzz_}"); done
rc=0
for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    clang $CFLAGS -fsanitize=fuzzer "fuzz/fuzz_$n.c" "${objs[@]}" $LIBS -o "$out/fuzz_$n"
    mkdir -p "$out/corpus/$n"
    echo "fuzz_$n: ${secs}s"
    if ! "$out/fuzz_$n" -max_total_time="$secs" -artifact_prefix=fuzz/artifacts/ \
         -print_final_stats=0 "$out/corpus/$n" "fuzz/corpus/$n" >"$out/fuzz_$n.log" 2>&1; then
        echo "fuzz_$n FOUND A CRASH (log: $out/fuzz_$n.log)"; tail -30 "$out/fuzz_$n.log"; rc=1
    fi
done
exit $rc
