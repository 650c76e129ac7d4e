#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/coldstart's data side: read traces, replay, physical limits, reports.

  coldstart.py trace NBDKIT_LOG OUT       the reads of an nbdkit log filter
                                          file as a trace: "start end offset
                                          length" per line, by start time
  coldstart.py replay URI TRACE [--qd N] [--wait-file F --ready-file R]
                                          replay a trace through NBD (libnbd)
                                          with the recorded concurrency, or
                                          in trace order with at most N reads
                                          in flight (--qd); prints JSON
                                          (t_start, t_first, t_end: epoch
                                          seconds of the connect, the first
                                          reply and the last). --wait-file:
                                          prepare, write R, then wait for F
                                          (the server's pidfile) before
                                          connecting
  coldstart.py readref IMAGE TRACE        the replay's checksum, read from
                                          the raw image directly
  coldstart.py needed INSPECT (--profile F | --trace F)
                                          what a read set needs of an image:
                                          chunks, stored and raw bytes, runs
  coldstart.py pagecache warm|drop PATH...  put files (or every file under a
                                          directory) into the page cache, or
                                          drop them from it; holes skipped
  coldstart.py get FILE KEY[.KEY...]      one value of a JSON file
  coldstart.py fetchlog LOG T0_OFFSET READY
                                          blockd's fetch log (--fetch-log) of
                                          one run, summarised as JSON: per
                                          class requests, bytes and latency by
                                          ready and in all, when the profile
                                          was through (T0_OFFSET: blockd's
                                          start after the run's t0; READY:
                                          seconds from t0)
  coldstart.py report DIR                 DIR/runs.jsonl + DIR/meta.json ->
                                          summary.json, runs.csv, summary.csv,
                                          report.md, chart.gp, chart.png

Replay: request i is sent once every request that had completed before i
started in the recording has completed in the replay (the dependencies a
reader's sequential logic put between them), so reads that overlapped in the
recording overlap again and the others keep their order; no think time.
With --qd N the recording's timing is ignored: reads are sent in trace order
as soon as fewer than N are in flight (N=1: one after the other, a boot's
serial reads; N=8: a guest's virtio queue). The checksum is SHA-256 over the
bytes of every read, in trace order.
"""
import csv
import datetime
import hashlib
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time

MiB = 1 << 20


# --- Traces ------------------------------------------------------------------

LOG_LINE = re.compile(r"(\S+ \S+) connection=(\d+) (\.\.\.)?Read id=(\d+)"
                      r"(?: offset=0x([0-9a-f]+) count=0x([0-9a-f]+))?")


def parse_nbdkit_log(path):
    """Reads of an nbdkit log filter file: [(start, end, offset, length)]."""
    open_reqs, out = {}, []
    for line in open(path):
        m = LOG_LINE.match(line)
        if not m:
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        key = (m.group(2), m.group(4))
        if m.group(3):
            if key in open_reqs:
                start, off, ln = open_reqs.pop(key)
                out.append((start, t, off, ln))
        else:
            open_reqs[key] = (t, int(m.group(5), 16), int(m.group(6), 16))
    if not out:
        sys.exit("coldstart.py: no reads in %s" % path)
    out.sort()
    t0 = out[0][0]
    return [(s - t0, e - t0, o, n) for s, e, o, n in out]


def load_trace(path):
    return [(float(a), float(b), int(c), int(d)) for a, b, c, d in (l.split() for l in open(path))]


def cmd_trace(log, out):
    reads = parse_nbdkit_log(log)
    with open(out, "w") as f:
        for s, e, o, n in reads:
            f.write("%.6f %.6f %d %d\n" % (s, e, o, n))
    print(json.dumps(trace_summary(reads)))


def trace_summary(reads):
    inflight_max = 0
    ends = []
    for s, e, _, _ in reads:
        ends = [x for x in ends if x > s]
        ends.append(e)
        inflight_max = max(inflight_max, len(ends))
    return {"reads": len(reads), "bytes": sum(r[3] for r in reads),
            "recorded_s": round(max(r[1] for r in reads), 3), "max_inflight": inflight_max}


def dependencies(reads):
    """For each read, the earlier reads that had ended before it started."""
    deps = []
    for i, (s, _, _, _) in enumerate(reads):
        deps.append([j for j in range(i) if reads[j][1] <= s])
    # Keep only the latest-ending ones that matter: a read already implied by
    # another dependency's own dependencies can go (keeps the check short).
    for i, d in enumerate(deps):
        implied = set()
        for j in d:
            implied.update(deps[j])
        deps[i] = [j for j in d if j not in implied]
    return deps


def cmd_replay(uri, trace, wait_file=None, ready_file=None, qd=None):
    import nbd
    reads = load_trace(trace)
    deps = None if qd else dependencies(reads)
    h = nbd.NBD()
    if ready_file:
        with open(ready_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if wait_file:
        deadline = time.monotonic() + 120
        while not (os.path.exists(wait_file) and os.path.getsize(wait_file) > 0):
            if time.monotonic() > deadline:
                sys.exit("coldstart.py: %s did not appear" % wait_file)
            time.sleep(0.001)
    t_start = time.time()
    h.connect_uri(uri)
    bufs = [None] * len(reads)
    done = [False] * len(reads)
    inflight = {}
    nxt = 0
    inflight_max = 0
    t_first = None
    t0 = time.monotonic()
    while nxt < len(reads) or inflight:
        while nxt < len(reads) and (len(inflight) < qd if qd else all(done[j] for j in deps[nxt])):
            _, _, off, ln = reads[nxt]
            buf = nbd.Buffer(ln)
            inflight[h.aio_pread(buf, off)] = (nxt, buf)
            nxt += 1
            inflight_max = max(inflight_max, len(inflight))
        h.poll(-1)
        for c in list(inflight):
            if h.aio_command_completed(c):
                i, buf = inflight.pop(c)
                bufs[i] = buf.to_bytearray()
                done[i] = True
                if t_first is None:
                    t_first = time.time()
    secs = time.monotonic() - t0
    t_end = time.time()
    h.shutdown()
    sha = hashlib.sha256()
    for b in bufs:
        sha.update(b)
    print(json.dumps({"replay_s": round(secs, 4), "t_start": t_start, "t_first": t_first, "t_end": t_end,
                      "qd": qd,
                      "reads": len(reads), "bytes": sum(r[3] for r in reads),
                      "max_inflight": inflight_max, "sha256": sha.hexdigest()}))


def cmd_readref(image, trace):
    sha = hashlib.sha256()
    with open(image, "rb") as f:
        for _, _, off, ln in load_trace(trace):
            sha.update(os.pread(f.fileno(), ln, off))
    print(sha.hexdigest())


# --- What a read set needs -----------------------------------------------------

def load_profile(path):
    """Byte ranges of a boot profile (docs/FORMAT.md section 6), in order."""
    b = open(path, "rb").read()
    if len(b) < 32 or b[:8] != b"HOCUSPRF":
        sys.exit("coldstart.py: %s is not a boot profile" % path)
    version, _, _, count, _ = struct.unpack_from("<IIIIQ", b, 8)
    if version != 1 or len(b) != 32 + 16 * count:
        sys.exit("coldstart.py: %s: unsupported profile" % path)
    return [struct.unpack_from("<QII", b, 32 + 16 * i)[:2] for i in range(count)]


def cmd_needed(inspect, profile=None, trace=None):
    img = json.load(open(inspect))
    cs, size = img["chunk_size"], img["image_size"]
    table = img["chunk_table"]
    dmap = {c: u for c, u in img["data_map"]}
    ranges = load_profile(profile) if profile else [(o, n) for _, _, o, n in load_trace(trace)]
    logical = set()
    for off, ln in ranges:
        end = min(off + ln, size)
        for c in range(off // cs, (end + cs - 1) // cs):
            logical.add(c)
    uniq = sorted({dmap[c] for c in logical if c in dmap}, key=lambda u: (table[u][0], table[u][1]))
    # Contiguous runs in the packs: the fewest range requests that fetch
    # exactly these chunks.
    runs, prev = 0, None
    for u in uniq:
        p, o, s = table[u][0], table[u][1], table[u][2]
        if prev is None or prev != (p, o):
            runs += 1
        prev = (p, o + s)
    stored = sum(table[u][2] for u in uniq)
    raw = sum(table[u][3] for u in uniq)
    print(json.dumps({"logical_chunks": len(logical), "data_chunks": len(uniq), "stored": stored, "raw": raw,
                      "runs": runs, "index": img["index_size"], "image_stored": img["stored_bytes"],
                      "image_raw": img["raw_bytes"], "chunk_size": cs, "image_size": size}))


# --- Page cache ------------------------------------------------------------------

def files_under(paths):
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in os.walk(p):
                for n in names:
                    f = os.path.join(d, n)
                    if os.path.isfile(f) and not os.path.islink(f):
                        yield f
        elif os.path.isfile(p):
            yield p


def data_segments(fd, size):
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        off = end


def cmd_pagecache(action, paths):
    total = 0
    buf = bytearray(8 * MiB)
    for f in files_under(paths):
        fd = os.open(f, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if action == "drop":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                continue
            for start, end in data_segments(fd, size):
                off = start
                while off < end:
                    n = os.preadv(fd, [memoryview(buf)[:min(len(buf), end - off)]], off)
                    if n <= 0:
                        break
                    off += n
                    total += n
        finally:
            os.close(fd)
    if action == "warm":
        print(total)


def cmd_fetchlog(path, t0_offset, ready):
    """Per class: requests, stored bytes, median latency, by ready and in all;
    when the last profile request ended (seconds from the run's t0)."""
    rows = []
    # errors="replace": a line with a damaged field must not lose the run.
    for line in open(path, errors="replace"):
        if not line.startswith("fetch "):
            continue
        d = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        rows.append((d["class"], float(d["start"]) + t0_offset, float(d["end"]) + t0_offset, int(d["bytes"]),
                     d["result"]))
    out = {}
    for c in ("demand", "profile", "background"):
        rs = [r for r in rows if r[0] == c]
        ready_rs = [r for r in rs if r[2] <= ready]
        lat = sorted(r[2] - r[1] for r in rs)
        out[c] = {"requests": len(rs), "bytes": sum(r[3] for r in rs),
                  "requests_ready": len(ready_rs), "bytes_ready": sum(r[3] for r in ready_rs),
                  "latency_med_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
                  "latency_max_ms": round(lat[-1] * 1000, 2) if lat else None,
                  "first_start_s": round(min(r[1] for r in rs), 4) if rs else None,
                  "last_end_s": round(max(r[2] for r in rs), 4) if rs else None,
                  "errors": sum(1 for r in rs if r[4] != "ok")}
    # Requests in flight over time, while the boot ran.
    ev = sorted([(r[1], 1) for r in rows] + [(r[2], -1) for r in rows])
    cur = peak = 0
    for t, k in ev:
        if t > ready:
            break
        cur += k
        peak = max(peak, cur)
    out["inflight_peak_ready"] = peak
    print(json.dumps(out))


def cmd_get(path, key):
    v = json.load(open(path))
    for k in key.split("."):
        v = v[int(k)] if isinstance(v, list) else v[k]
    print(v if not isinstance(v, (dict, list)) else json.dumps(v))


# --- Report ----------------------------------------------------------------------

SCENARIOS = {
    "local": "(0) local disk (no network)",
    "full-pull": "(a) full pull, then start",
    "lazy": "(b) blockd lazy, no profile",
    "profile": "(c) blockd + published profile",
    "repacked": "(c+) blockd, image repacked in profile order",
    "nbdkit": "(d) nbdkit curl + cache (1 MiB blocks)",
    "qemu": "(e) qemu http driver (qemu-storage-daemon)",
    "profile-nobg": "(c-) blockd + profile, background stream off",
}
VIEWS = {"workload": "start workload via chroot", "replay": "read-trace replay through NBD, recorded concurrency"}
PEERS = ("nbdkit", "qemu")


def view_label(v):
    return VIEWS.get(v) or "read-trace replay through NBD, at most %s reads in flight" % v[2:]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, f="%.2f"):
    return "-" if v is None else f % v


def mib(v):
    return "-" if v is None else "%.1f" % (v / MiB)


def cmd_report(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    runs = [json.loads(l) for l in open(os.path.join(d, "runs.jsonl")) if l.strip()]
    links = meta["links"]
    # The local-disk floor of each view: the "local" runs of every round.
    meta["floor"] = {}
    for view in meta["views"]:
        meta["floor"][view] = med([r["ready_s"] for r in runs if r["scenario"] == "local" and r["view"] == view])
    meta["floor_how"] = {v: "nbdkit's file plugin on the raw image, page cache dropped" for v in meta["views"]}
    meta["floor_how"]["workload"] = "a loop mount of the raw image and the start, page cache dropped"
    rows = []
    for link in links:
        lname = link["name"]
        for view in meta["views"]:
            need = meta["needed"][view]
            rate = link["rate_bps"]
            rtt = link["rtt_s"]
            # The physical limit: what the start needs, as stored, plus the
            # index, at the link's payload rate, plus the round trips a
            # perfect client needs (TCP connect, manifest, index, then every
            # needed range at once).
            limit = (need["stored"] + need["index"]) * 8 / rate + meta["perfect_rtts"] * rtt
            floor = meta["floor"][view]
            for scen in meta["scenarios"]:
                rs = [r for r in runs if r["link"] == lname and r["view"] == view and r["scenario"] == scen]
                if not rs:
                    continue
                row = {
                    "link": lname, "link_label": link["label"], "view": view, "scenario": scen,
                    "runs": len(rs), "ok": all(r["ok"] for r in rs),
                    "stalled_runs": sum(1 for r in rs if r.get("stalled")),
                    "ready_s": med([r["ready_s"] for r in rs]),
                    "first_byte_s": med([r.get("first_byte_s") for r in rs]),
                    "ready_min_s": min(r["ready_s"] for r in rs), "ready_max_s": max(r["ready_s"] for r in rs),
                    "attach_s": med([r.get("attach_s") for r in rs]),
                    "pull_s": med([r.get("pull_s") for r in rs]),
                    "hydrated_s": med([r.get("hydrated_s") for r in rs]),
                    "fetched_ready": med([r.get("fetched_ready") for r in rs]),
                    "wire_ready": med([r.get("wire_ready") for r in rs]),
                    "wire_total": med([r.get("wire_total") for r in rs]),
                    "requests_ready": med([r.get("requests_ready") for r in rs]),
                    "requests_total": med([r.get("requests_total") for r in rs]),
                    "demand_waits": med([r.get("demand_waits") for r in rs]),
                    "demand_wait_s": med([r.get("demand_wait_s") for r in rs]),
                    "class_requests": rs[len(rs) // 2].get("class_requests"),
                    "window_ready": med([r.get("window_ready") for r in rs]),
                    "bandwidth_ready": med([r.get("bandwidth_ready") for r in rs]),
                    "replay_s": med([r.get("replay_s") for r in rs]),
                    "limit_s": limit, "floor_s": floor,
                    "load": [r.get("load") for r in rs],
                    "cpu_pressure_pct": med([r.get("cpu_pressure_pct") for r in rs]),
                }
                for c in ("demand", "profile", "background"):
                    f = [r["fetch"][c] for r in rs if r.get("fetch")]
                    row[c + "_requests_ready"] = med([x["requests_ready"] for x in f])
                    row[c + "_bytes_ready"] = med([x["bytes_ready"] for x in f])
                    row[c + "_latency_med_ms"] = med([x["latency_med_ms"] for x in f])
                    row[c + "_last_end_s"] = med([x["last_end_s"] for x in f])
                for k in ("machine", "server", "linkem", "client", "wall"):
                    row["cpu_" + k] = med([r["cpu"][k] for r in rs if r.get("cpu")])
                row["inflight_peak_ready"] = med([r["fetch"]["inflight_peak_ready"] for r in rs if r.get("fetch")])
                row["ratio_limit"] = row["ready_s"] / limit
                row["bound_s"] = max(limit, floor or 0)
                row["ratio_bound"] = row["ready_s"] / row["bound_s"]
                # The client's CPU per GiB it fetched (blockd, or the peer).
                f = row["fetched_ready"]
                row["cpu_per_gib"] = row["cpu_client"] / (f / 2**30) if f and row["cpu_client"] is not None else None
                rows.append(row)
    # Every row against every peer of the same link and view (the peer's
    # time to ready over this row's: above 1, this row is faster).
    for row in rows:
        for peer in PEERS:
            p = next((r for r in rows if r["scenario"] == peer and r["link"] == row["link"]
                      and r["view"] == row["view"]), None)
            row["speedup_vs_" + peer] = p["ready_s"] / row["ready_s"] if p and row["ready_s"] else None
        sp = [row["speedup_vs_" + p] for p in PEERS if row.get("speedup_vs_" + p)]
        row["speedup_vs_best_peer"] = min(sp) if sp else None
    # Ratios between scenarios, per link and view.
    aims = []
    for link in links:
        for view in meta["views"]:
            get = {r["scenario"]: r for r in rows if r["link"] == link["name"] and r["view"] == view}
            p = get.get("profile")
            if not p:
                continue
            a = {"link": link["name"], "link_label": link["label"], "view": view,
                 "profile_s": p["ready_s"], "limit_s": p["limit_s"], "ratio_limit": p["ratio_limit"],
                 "bound_s": p["bound_s"], "ratio_bound": p["ratio_bound"],
                 "meets_limit": p["ratio_limit"] <= 1.3}
            if "full-pull" in get:
                a["full_pull_s"] = get["full-pull"]["ready_s"]
                a["speedup_vs_full_pull"] = get["full-pull"]["ready_s"] / p["ready_s"]
                a["meets_full_pull"] = a["speedup_vs_full_pull"] >= 10
            if "nbdkit" in get:
                a["nbdkit_s"] = get["nbdkit"]["ready_s"]
                a["speedup_vs_nbdkit"] = get["nbdkit"]["ready_s"] / p["ready_s"]
                a["meets_nbdkit"] = a["speedup_vs_nbdkit"] > 1
            if "repacked" in get:
                a["repacked_s"] = get["repacked"]["ready_s"]
                a["repacked_ratio_limit"] = get["repacked"]["ratio_limit"]
            # Issue 13's goals: no profile >= 1.5x and a published profile
            # >= 3x the best peer, the profile within 1.5x of the bound.
            a["profile_vs_best_peer"] = p["speedup_vs_best_peer"]
            a["meets_profile_peer"] = None if p["speedup_vs_best_peer"] is None else p["speedup_vs_best_peer"] >= 3
            a["meets_bound"] = p["ratio_bound"] <= 1.5
            if "lazy" in get:
                a["lazy_vs_best_peer"] = get["lazy"]["speedup_vs_best_peer"]
                a["meets_lazy_peer"] = None if a["lazy_vs_best_peer"] is None else a["lazy_vs_best_peer"] >= 1.5
                a["lazy_first_byte_s"] = get["lazy"]["first_byte_s"]
            a["profile_first_byte_s"] = p["first_byte_s"]
            aims.append(a)
    summary = {"meta": meta, "rows": rows, "aims": aims}
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    # Every run, and the medians, as CSV.
    keys = sorted({k for r in runs for k in r if not isinstance(r[k], (dict, list))})
    with open(os.path.join(d, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in runs:
            w.writerow(r)
    cols = ["link", "view", "scenario", "runs", "ok", "ready_s", "first_byte_s", "speedup_vs_best_peer",
            "speedup_vs_nbdkit", "speedup_vs_qemu", "cpu_client", "cpu_per_gib", "ready_min_s", "ready_max_s", "cpu_pressure_pct", "limit_s",
            "ratio_limit", "floor_s", "bound_s", "ratio_bound", "attach_s", "pull_s", "hydrated_s",
            "fetched_ready", "wire_ready", "wire_total", "requests_ready", "requests_total", "demand_waits",
            "demand_wait_s"]
    with open(os.path.join(d, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r[c] is None else (round(r[c], 4) if isinstance(r[c], float) else r[c]) for c in cols])
    write_markdown(d, meta, rows, aims)
    write_chart(d, meta, rows)


def write_markdown(d, meta, rows, aims):
    m = meta
    L = []
    L.append("# Cold start: %s" % m["image"]["label"])
    L.append("")
    L.append("Run %s on %s (%d CPUs, %s, %.0f GiB RAM, kernel %s); load average %s at the start, %s at the end. "
             "Tree %s. Absolute times hold for this machine only; read the ratios." % (
                 m["started"], m["host"]["cpu"], m["host"]["cpus"], m["host"].get("hypervisor", "?"),
                 m["host"]["mem_gib"], m["host"]["kernel"], m["load_start"], m.get("load_end", "?"), m["git"]))
    L.append("")
    L.append("Command: `%s` (mode %s, %d run%s per cell, medians; %s)." % (
        m["command"], m["mode"], m["runs"], "" if m["runs"] == 1 else "s", m["image"]["workload"]))
    L.append("")
    im, n = m["image"], m["needed"]
    L.append("Image: %s, %.0f GiB logical, %.1f MiB stored in %d packs (%d unique chunks of %d KiB; index %.1f KiB)." % (
        im["ref"], im["size"] / 2**30, im["stored"] / MiB, im["packs"], im["unique_chunks"],
        im["chunk_size"] // 1024, n["workload"]["index"] / 1024))
    for view in m["views"]:
        x = n[view]
        L.append("- **%s** needs %d chunks holding data: %.1f MiB stored (%.1f MiB raw), %d contiguous runs in the packs; "
                 "local floor %s s (%s)." % (view, x["data_chunks"], x["stored"] / MiB, x["raw"] / MiB, x["runs"],
                                             fmt(m["floor"][view]), m["floor_how"][view]))
    L.append("")
    for link in m["links"]:
        L.append("- link **%s**: linkem `--delay %s --rate %s` (RTT %.1f ms), payload rate used for the limit %.2f Gbit/s%s" % (
            link["label"], link["delay"], link["rate"], link["rtt_s"] * 1000, link["rate_bps"] / 1e9,
            link.get("note", "")))
    c = m.get("ceiling")
    if c:
        L.append("- linkem's own ceiling, measured in this run (`bench/linkem-ceiling.sh %s`, best of its repetitions): "
                 "**%s Gbit/s** (uncapped %s Gbit/s, where direct loopback gave %s Gbit/s; capped at 10 Gbit/s it "
                 "delivered %s Gbit/s); its timers were late by %s." % (
                     c.get("args", ""), c.get("ceiling_gbit", "?"), c.get("uncapped_gbit", "?"),
                     c.get("direct_gbit", "?"), c.get("at10_gbit", "?"), c.get("lateness", "?")))
    L.append("")
    L.append("**ready**: from the first command (blockd/nbdkit start, `hocus-blk mount` or `pull`) until the start "
             "finished. **limit**: (stored bytes needed + index) / rate + %d round trips (connect, manifest, index, "
             "all ranges at once). **floor**: the same start from the raw image on local disk (scenario 0, median of every round). **CPU pressure**: the share of the time some task waited for a CPU (/proc/pressure/cpu), the noise gauge of a shared machine. **bound** = max(limit, "
             "floor): no client can beat either. **fetched**: stored bytes the client had fetched when ready "
             "(registry blobs or HTTP body bytes); **wire**: bytes linkem carried down by then / in all. "
             "**requests**: blob GETs (registry access log) or HTTP GETs (httpd log) by then / in all. "
             "**first byte**: from the server's start until the replay's first reply (replay views). "
             "**vs nbdkit / vs qemu**: that peer's ready time over this row's in the same run (above 1: faster "
             "than the peer). **CPU-s/GiB**: the client's CPU seconds (utime+stime of blockd, or of the peer: "
             "nbdkit and, in the workload view, nbdfuse; qemu-storage-daemon, which is its own FUSE server) until "
             "ready per GiB it had fetched." % m["perfect_rtts"])
    L.append("")
    for view in m["views"]:
        L.append("## %s (%s)" % (view, view_label(view)))
        L.append("")
        L.append("| link | scenario | ready s | first byte ms | vs nbdkit | vs qemu | min-max | CPU pressure % | limit s | "
                 "x limit | floor s | x bound | client CPU-s/GiB | hydrated s | fetched MiB | wire MiB ready / all | "
                 "requests ready / all | demand waits |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["view"] != view:
                continue
            L.append("| %s | %s%s | **%s** | %s | %s | %s | %s-%s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | "
                     "%s / %s | %s |" % (
                r["link_label"], SCENARIOS[r["scenario"]], ("" if r["ok"] else " (WRONG OUTPUT)") +
                ("" if not r["stalled_runs"] else " (STALLED in %d of %d runs: ready is a lower bound)" % (
                    r["stalled_runs"], r["runs"])),
                fmt(r["ready_s"]),
                fmt(r["first_byte_s"] * 1000 if r["first_byte_s"] is not None else None, "%.0f"),
                fmt(r.get("speedup_vs_nbdkit"), "%.2fx"), fmt(r.get("speedup_vs_qemu"), "%.2fx"),
                fmt(r["ready_min_s"]), fmt(r["ready_max_s"]), fmt(r["cpu_pressure_pct"], "%.0f"),
                fmt(r["limit_s"], "%.3f"),
                fmt(r["ratio_limit"], "%.1fx"), fmt(r["floor_s"]), fmt(r["ratio_bound"], "%.1fx"),
                fmt(r["cpu_per_gib"], "%.1f"),
                fmt(r["hydrated_s"], "%.1f"), mib(r["fetched_ready"]), mib(r["wire_ready"]), mib(r["wire_total"]),
                fmt(r["requests_ready"], "%.0f"), fmt(r["requests_total"], "%.0f"),
                fmt(r["demand_waits"], "%.0f")))
        L.append("")
    diag = [r for r in rows if r["scenario"] not in ("nbdkit", "qemu", "full-pull", "local")]
    if diag:
        L.append("## What blockd did until ready (from its fetch log and stats; medians)")
        L.append("")
        L.append("| link | view | scenario | requests demand / profile / background | MiB demand / profile / background "
                 "| median latency ms d / p / b | profile through at s | peak in flight | window at ready | "
                 "bandwidth estimate MB/s |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in diag:
            L.append("| %s | %s | %s | %s / %s / %s | %s / %s / %s | %s / %s / %s | %s | %s | %s | %s |" % (
                r["link_label"], r["view"], r["scenario"],
                fmt(r["demand_requests_ready"], "%.0f"), fmt(r["profile_requests_ready"], "%.0f"),
                fmt(r["background_requests_ready"], "%.0f"),
                mib(r["demand_bytes_ready"]), mib(r["profile_bytes_ready"]), mib(r["background_bytes_ready"]),
                fmt(r["demand_latency_med_ms"], "%.1f"), fmt(r["profile_latency_med_ms"], "%.1f"),
                fmt(r["background_latency_med_ms"], "%.1f"), fmt(r["profile_last_end_s"]),
                fmt(r["inflight_peak_ready"], "%.0f"), fmt(r["window_ready"], "%.0f"),
                fmt(r["bandwidth_ready"] / 1e6 if r["bandwidth_ready"] is not None else None, "%.0f")))
        L.append("")
    L.append("## Where the CPU went until ready (seconds, medians; the machine has %d CPUs)" % m["host"]["cpus"])
    L.append("")
    L.append("Server: docker-registry or httpd.py; client: blockd, or nbdkit (+ nbdfuse), or qemu-storage-daemon; the rest of the machine's busy "
             "time is the start itself (chroot programs, the replay client, the kernel's loop and FUSE work), `hocus-blk "
             "pull` for (a), the harness and other users of the machine.")
    L.append("")
    L.append("| link | view | scenario | wall s | machine busy | server | linkem | client | rest |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("cpu_machine") is None:
            continue
        rest = r["cpu_machine"] - r["cpu_server"] - r["cpu_linkem"] - r["cpu_client"]
        L.append("| %s | %s | %s | %.2f | %.2f (%.0f%%) | %.2f | %.2f | %.2f | %.2f |" % (
            r["link_label"], r["view"], r["scenario"], r["cpu_wall"], r["cpu_machine"],
            100 * r["cpu_machine"] / (r["cpu_wall"] * m["host"]["cpus"]) if r["cpu_wall"] else 0,
            r["cpu_server"], r["cpu_linkem"], r["cpu_client"], rest))
    L.append("")
    L.append("## Aims (with the published profile)")
    L.append("")
    L.append("| link | view | profile s | x limit (aim <= 1.3) | x bound (aim <= 1.5) | vs full pull (aim >= 10x) "
             "| vs nbdkit (aim > 1x) | profile vs best peer (aim >= 3x) | no profile vs best peer (aim >= 1.5x) "
             "| first byte ms, no profile / profile |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    yn = lambda ok: "" if ok is None else (" met" if ok else " **missed**")
    ms = lambda v: fmt(v * 1000 if v is not None else None, "%.0f")
    for a in aims:
        L.append("| %s | %s | %.2f | %.1fx%s | %.1fx%s | %s%s | %s%s | %s%s | %s%s | %s / %s |" % (
            a["link_label"], a["view"], a["profile_s"], a["ratio_limit"], yn(a["meets_limit"]), a["ratio_bound"],
            yn(a["meets_bound"]), fmt(a.get("speedup_vs_full_pull"), "%.1fx"), yn(a.get("meets_full_pull")),
            fmt(a.get("speedup_vs_nbdkit"), "%.2fx"), yn(a.get("meets_nbdkit")),
            fmt(a.get("profile_vs_best_peer"), "%.2fx"), yn(a.get("meets_profile_peer")),
            fmt(a.get("lazy_vs_best_peer"), "%.2fx"), yn(a.get("meets_lazy_peer")),
            ms(a.get("lazy_first_byte_s")), ms(a.get("profile_first_byte_s"))))
    L.append("")
    if os.path.exists(os.path.join(d, "chart.png")):
        L.append("![time to ready](chart.png)")
        L.append("")
    L.append("Files: runs.jsonl / runs.csv (every run), summary.json / summary.csv (medians, limits, ratios), "
             "logs/ (registry, httpd, blockd fetch logs, linkem stats of each run).")
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")


SHORT = {"local": "local disk", "full-pull": "full pull", "lazy": "lazy", "profile": "profile", "repacked": "repacked",
         "nbdkit": "nbdkit", "qemu": "qemu", "profile-nobg": "profile, no bg"}   # tic labels, slanted


def write_chart(d, meta, rows):
    """A clustered bar chart per view: time to ready per scenario and link
    (labelled), min-max whiskers, the physical limits and the local floor as
    lines."""
    scen = [s for s in meta["scenarios"] if any(r["scenario"] == s for r in rows)]
    links = meta["links"]
    views = [v for v in meta["views"] if any(r["view"] == v for r in rows)]
    for view in views:
        with open(os.path.join(d, "chart-%s.dat" % view), "w") as f:
            f.write("# scenario " + " ".join("%s %s_min %s_max" % (l["name"], l["name"], l["name"]) for l in links) + "\n")
            for s in scen:
                vals = []
                for l in links:
                    r = next((r for r in rows if r["link"] == l["name"] and r["view"] == view and r["scenario"] == s), None)
                    vals += ["%.4f %.4f %.4f" % (r["ready_s"], r["ready_min_s"], r["ready_max_s"]) if r else "NaN NaN NaN"]
                f.write('"%s" %s\n' % (SHORT.get(s, s), " ".join(vals)))
    n = len(links)
    gap = 1
    gp = []
    gp.append('set terminal pngcairo size %d,%d font "DejaVu Sans,11" noenhanced' % (600 * len(views) + 60, 600))
    gp.append('set output "%s"' % os.path.join(d, "chart.png"))
    gp.append("set multiplot layout 1,%d title \"Cold start to ready: %s (median of %d run%s; whiskers min-max; log scale)\" "
              "font \",13\"" % (len(views), meta["image"]["label"], meta["runs"], "" if meta["runs"] == 1 else "s"))
    gp.append("set style data histograms")
    gp.append("set style histogram errorbars gap %d lw 1" % gap)
    gp.append("set style fill solid 0.85 border -1")
    gp.append("set boxwidth 0.9")
    gp.append("set logscale y")
    gp.append("set format y '%g'")
    gp.append("set grid ytics mytics lc rgb '#e0e0e0'")
    gp.append("set ylabel 'seconds to ready'")
    gp.append("set xtics nomirror scale 0 rotate by -25 left")
    gp.append("set key below horizontal maxcols 2 width -4")
    gp.append("set bmargin 9")
    colors = ["#4477aa", "#ee6677", "#228833", "#ccbb44"]
    for view in views:
        rs = [r for r in rows if r["view"] == view]
        ymin = min([r["ready_min_s"] for r in rs] + [r["limit_s"] for r in rs]) / 2
        ymax = max(r["ready_max_s"] for r in rs) * 4
        gp.append("set yrange [%g:%g]" % (ymin, ymax))
        gp.append("set title '%s'" % view_label(view))
        dat = os.path.join(d, "chart-%s.dat" % view)
        plots = []
        for i, l in enumerate(links):
            col = 2 + 3 * i
            plots.append("'%s' using %d:%d:%d:xtic(1) title 'ready, %s' lc rgb '%s'" % (
                dat, col, col + 1, col + 2, l["label"], colors[i % len(colors)]))
        for i, l in enumerate(links):
            col = 2 + 3 * i
            # Bar i of cluster k sits at k + (i - (n - 1) / 2) / (n + gap).
            plots.append("'%s' using ($0 + %g):(column(%d) * 1.12):(sprintf('%%.2f', column(%d))) with labels "
                         "font ',9' notitle" % (dat, (i - (n - 1) / 2) / (n + gap), col + 2, col))
        for i, l in enumerate(links):
            lim = next((r["limit_s"] for r in rs if r["link"] == l["name"]), None)
            if lim:
                plots.append("%g with lines dt 2 lw 2 lc rgb '%s' title 'physical limit, %s: %.3f s'" % (
                    lim, colors[i % len(colors)], l["label"], lim))
        fl = meta["floor"][view]
        if fl:
            plots.append("%g with lines dt 3 lw 2 lc rgb '#333333' title 'local disk (median): %.2f s'" % (fl, fl))
        gp.append("plot " + ", \\\n     ".join(plots))
    gp.append("unset multiplot")
    path = os.path.join(d, "chart.gp")
    with open(path, "w") as f:
        f.write("\n".join(gp) + "\n")
    try:
        subprocess.run(["gnuplot", path], check=True, capture_output=True, text=True)
    except FileNotFoundError:
        print("coldstart.py: gnuplot is not installed: no chart.png (chart.gp is there)", file=sys.stderr)
    except subprocess.CalledProcessError as e:
        print("coldstart.py: gnuplot failed: %s" % e.stderr.strip(), file=sys.stderr)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "trace" and len(a) == 3:
        cmd_trace(a[1], a[2])
    elif cmd == "replay" and len(a) >= 3:
        opts = dict(zip(a[3::2], a[4::2]))
        if len(a) % 2 == 0 or set(opts) - {"--qd", "--wait-file", "--ready-file"} or \
                ("--wait-file" in opts) != ("--ready-file" in opts):
            sys.exit(__doc__)
        cmd_replay(a[1], a[2], opts.get("--wait-file"), opts.get("--ready-file"),
                   int(opts["--qd"]) if "--qd" in opts else None)
    elif cmd == "fetchlog" and len(a) == 4:
        cmd_fetchlog(a[1], float(a[2]), float(a[3]))
    elif cmd == "readref" and len(a) == 3:
        cmd_readref(a[1], a[2])
    elif cmd == "needed" and len(a) == 4 and a[2] in ("--profile", "--trace"):
        cmd_needed(a[1], **{a[2][2:]: a[3]})
    elif cmd == "pagecache" and len(a) >= 3 and a[1] in ("warm", "drop"):
        cmd_pagecache(a[1], a[2:])
    elif cmd == "get" and len(a) == 3:
        cmd_get(a[1], a[2])
    elif cmd == "report" and len(a) == 2:
        cmd_report(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
