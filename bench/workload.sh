#!/usr/bin/env bash
# The cold-start benchmark's start workload: what the first minute in a
# workspace runs, as programs from the image (chroot into MOUNTPOINT, the
# mounted workspace filesystem that bench/make-workspace.sh built):
#   shell       bash starts, reads /etc
#   packages    dpkg-query lists the installed packages
#   python      python3 imports json, sqlite3, asyncio, email, http, xml,
#               decimal ... and runs a small sqlite3/json job
#   gcc         compiles and runs a small C program (skipped when the image
#               has no gcc: the --quick image)
#   git         init, add a project module, commit (fixed identity and
#               dates), in /tmp
#   project     reads every 10th project file and every config, hashes them
# The image may be mounted read-only: /tmp becomes a tmpfs and the host's
# /dev and /proc are bound in for the duration (undone on every exit).
#
# stdout is deterministic: the same image prints the same lines, so a run
# can be checked against a reference. Step timings go to stderr.
#
# usage: bench/workload.sh MOUNTPOINT
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 MOUNTPOINT" >&2; exit 2; }
M=$(cd "$1" && pwd)
[ -x "$M/usr/bin/python3" ] || { echo "workload: $M has no /usr/bin/python3: not a workspace image" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "workload: needs root (chroot, mount)" >&2; exit 1; }

mounts=()
cleanup() {
        local i
        for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
                umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}"
        done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mount -t tmpfs -o size=256m,mode=1777 workload-tmp "$M/tmp"
mounts+=("$M/tmp")
mount --bind /dev "$M/dev"
mounts+=("$M/dev")
mount -t proc workload-proc "$M/proc"
mounts+=("$M/proc")

# in_image CMD...: run CMD inside the image with a clean, fixed environment.
in_image() {
        chroot "$M" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
                HOME=/tmp LC_ALL=C.UTF-8 TZ=UTC "$@"
}

t_all=$(date +%s%N)
# step NAME CMD...: run one step, print "NAME: its output", time to stderr.
step() {
        local name=$1 t out
        shift
        t=$(date +%s%N)
        out=$("$@")
        printf '%-9s %s\n' "$name:" "$out"
        printf 'workload: %-9s %6d ms\n' "$name" $((($(date +%s%N) - t) / 1000000)) >&2
}

step shell in_image /bin/bash -c 'echo "bash $BASH_VERSION on Debian $(cat /etc/debian_version)"'
step packages in_image /bin/sh -c 'echo "$(dpkg-query -W -f "\${Package}\n" | wc -l) installed"'
step python in_image /usr/bin/python3 -c '
import argparse, asyncio, csv, decimal, email.parser, hashlib, http.client
import json, sqlite3, subprocess, unittest, urllib.parse, xml.etree.ElementTree as ET
db = sqlite3.connect(":memory:")
db.execute("create table t (k integer primary key, v text)")
db.executemany("insert into t values (?, ?)", ((i, "row %d" % i) for i in range(10000)))
total, = db.execute("select sum(k) from t where v like ?", ("row 1%",)).fetchone()
doc = json.dumps({"total": total, "pi": str(decimal.Decimal(355) / 113)}, sort_keys=True)
root = ET.fromstring("<r><a>%d</a></r>" % total)
async def twice(x):
    return 2 * x
n = asyncio.run(twice(int(root.find("a").text)))
print("python %s, sqlite %s, result %s" % (".".join(map(str, __import__("sys").version_info[:3])),
      sqlite3.sqlite_version, hashlib.sha256((doc + str(n)).encode()).hexdigest()[:16]))
'
if [ -x "$M/usr/bin/gcc" ]; then
        cat >"$M/tmp/hello.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
        unsigned long sum = 0;
        char buf[64];
        for (int i = 0; i < 1000; i++) {
                snprintf(buf, sizeof(buf), "%d", i * i);
                sum += strlen(buf);
        }
        printf("gcc %d.%d compiled it; digits %lu\n", __GNUC__, __GNUC_MINOR__, sum);
        return EXIT_SUCCESS;
}
C
        step gcc in_image /bin/sh -c 'gcc -O2 -Wall -o /tmp/hello /tmp/hello.c && /tmp/hello'
else
        echo "gcc:      not in this image (--quick)"
fi
step git in_image /bin/sh -c '
export GIT_AUTHOR_NAME=dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=dev
export GIT_COMMITTER_EMAIL=dev@example.com GIT_AUTHOR_DATE="2024-01-01T00:00:00Z"
export GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
cd /tmp && git init -q -b main repo && cd repo &&
cp -r /home/dev/ws/project/module0[0-3] . && git add -A &&
git commit -q -m "workspace start" &&
echo "$(git ls-files | wc -l) files committed, HEAD $(git rev-parse --short=12 HEAD)"'
step project in_image /bin/sh -c '
cd /home/dev/ws && { find project -type f | sort | awk "NR % 10 == 1"; find etc -type f | sort; } >/tmp/files &&
xargs cat </tmp/files >/tmp/all &&
echo "$(wc -l </tmp/files) files, $(wc -c </tmp/all) bytes, sha256 $(sha256sum </tmp/all | cut -c1-16)"'
printf 'workload: total     %6d ms\n' $((($(date +%s%N) - t_all) / 1000000)) >&2
