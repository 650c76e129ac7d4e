#!/usr/bin/env python3
# gopclntab-sym.py BINARY [TOP]: `perf script` output (with -g call chains)
# of a stripped, non-PIE Go binary on stdin -> where its CPU went: the
# samples by first Go frame (with the kernel function they ended in), and
# the share of samples each Go function was on the stack for. Function
# names come from the binary's .gopclntab (Go 1.18+ layout), which Go keeps
# in stripped binaries such as Debian's docker-registry; perf cannot read
# it. Used by bench/registry-cpu.sh --perf.
import bisect, collections, re, struct, subprocess, sys

binary = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
sections = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
m = re.search(r"\.gopclntab\s+PROGBITS\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", sections)
if not m:
    sys.exit("%s: no .gopclntab" % binary)
off, size = int(m.group(2), 16), int(m.group(3), 16)
with open(binary, "rb") as f:
    f.seek(off)
    tab = f.read(size)
if struct.unpack_from("<I", tab, 0)[0] not in (0xfffffff0, 0xfffffff1):
    sys.exit("%s: .gopclntab is not the Go 1.18+ layout" % binary)
nfunc, _nfiles, text, nameoff, _cu, _files, _pc, funcoff = struct.unpack_from("<8Q", tab, 8)
entries, names = [], []
for i in range(nfunc):
    entry, fo = struct.unpack_from("<II", tab, funcoff + 8 * i)
    n = nameoff + struct.unpack_from("<i", tab, funcoff + fo + 4)[0]
    entries.append(text + entry)
    names.append(tab[n:tab.index(b"\0", n)].decode())
# perf prints a non-PIE binary's addresses relative to its first mapping.
base = int(re.search(r"LOAD\s+0x0+\s+0x([0-9a-f]+)",
                     subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout).group(1), 16)


def sym(addr):
    i = bisect.bisect_right(entries, addr) - 1
    return names[i] if i >= 0 else "?"


flat, incl, total = collections.Counter(), collections.Counter(), 0
for block in sys.stdin.read().split("\n\n"):
    frames, kern = [], None
    for line in block.strip().split("\n")[1:]:
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        if "kernel" in parts[1]:
            kern = kern or parts[1].split("+")[0]
        elif binary in parts[1]:
            frames.append(sym(int(parts[0], 16) + base))
    if not frames and not kern:
        continue
    total += 1
    flat[(frames[0] if frames else "?") + (" -> [k] " + kern if kern else "")] += 1
    for f in set(frames):
        incl[f] += 1
print("%d samples" % total)
print("--- by first Go frame (-> the kernel function it ended in)")
for k, v in flat.most_common(top):
    print("%5.1f%% %s" % (100 * v / total, k))
print("--- on the stack (inclusive)")
for k, v in incl.most_common(2 * top):
    print("%5.1f%% %s" % (100 * v / total, k))
