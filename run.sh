#!/usr/bin/env bash
# The two entry points of the README, for a fresh Debian 12 machine:
#   ./run.sh demo   install what is needed, build, run the main job
#   ./run.sh test   install what is needed, build, run the whole test suite
#                   (a normal build with warnings as errors, then an
#                   ASan+UBSan build, each through every test, then the
#                   parsers' libFuzzer targets for 20 s each)
set -euo pipefail
cd "$(dirname "$0")"

build() {
        local dir=$1
        shift
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" --werror "$@"
        else
                meson setup --reconfigure "$dir" --werror "$@" >/dev/null
        fi
        ninja -C "$dir"
}

# After a suite: nothing a test started may outlive it (the tests' temporary
# directories are ${TMPDIR:-/tmp}/hocus-test.*).
no_leftovers() {
        local tmp=${TMPDIR:-/tmp} left
        left=$({ grep " $tmp/hocus-test\." /proc/self/mountinfo || true
                losetup -a 2>/dev/null | grep "$tmp/hocus-test\." || true
                pgrep -af "$tmp/hocus-test\." || true; })
        if [ -n "$left" ]; then
                echo "the $1 suite left these behind:" >&2
                echo "$left" >&2
                return 1
        fi
}

case "${1:-}" in
demo)
        bash tests/install-deps.sh
        build build
        bash cli/demo.sh build
        ;;
test)
        bash tests/install-deps.sh
        build build
        meson test -C build --print-errorlogs --num-processes 1
        no_leftovers plain
        build build-asan -Db_sanitize=address,undefined -Db_lundef=false
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                meson test -C build-asan --print-errorlogs --num-processes 1
        no_leftovers ASan
        bash tests/fuzz/run.sh 20
        ;;
*)
        echo "usage: $0 demo|test" >&2
        exit 2
        ;;
esac
