#!/usr/bin/env bash
# bench/coldstart --quick as a smoke test: it must complete on a fresh
# machine (no debootstrap cache: the synthetic workspace) and write a well
# formed report: runs.jsonl, runs.csv, summary.json, summary.csv,
# report.md, and chart.png when gnuplot is installed. Timings are not
# checked (benchmarks are never timed tests); only that every cell has its
# runs, every start read the right data, and the numbers are numbers.
. "${TESTS_DIR:?}/functions.sh"
requires_root
requires docker-registry nbdkit nbdfuse curl losetup mkfs.ext4
[ -e /dev/fuse ] || skip "needs /dev/fuse"
src=$(cd "$TESTS_DIR/.." && pwd)
out=$T/results

rc=0
"$src/bench/coldstart" --quick --build "${BUILD_DIR:?}" --out "$out" --workdir "$T" >"$T/coldstart.log" 2>&1 || rc=$?
[ "$rc" -ne 77 ] || skip "bench/coldstart: $(grep skipping "$T/coldstart.log" | tail -1)"
if [ "$rc" -ne 0 ]; then
        tail -30 "$T/coldstart.log" >&2
        fail "bench/coldstart --quick exited with $rc"
fi

/usr/bin/python3 - "$out" <<'PY' || fail "malformed bench/coldstart output (see above)"
import csv, json, os, sys
d = sys.argv[1]
def need(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)
num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
for f in ("runs.jsonl", "runs.csv", "summary.json", "summary.csv", "report.md", "meta.json"):
    need(os.path.getsize(os.path.join(d, f)) > 0, f + " is missing or empty")

meta = json.load(open(os.path.join(d, "meta.json")))
links = [l["name"] for l in meta["links"]]
need(len(links) == 2, "two link profiles")
need(all(num(l["rate_bps"]) and l["rate_bps"] > 0 and num(l["rtt_s"]) and l["rtt_s"] > 0 for l in meta["links"]),
     "link rates and round trips")
need(float(meta["ceiling"]["ceiling_gbit"]) > 0, "linkem's ceiling measured")
for v in meta["views"]:
    n = meta["needed"][v]
    need(n["data_chunks"] > 0 and 0 < n["stored"] <= n["image_stored"] and n["runs"] > 0, "needed bytes of " + v)
need(meta["trace"]["reads"] > 0, "a recorded read trace")

runs = [json.loads(l) for l in open(os.path.join(d, "runs.jsonl")) if l.strip()]
cells = {(r["link"], r["scenario"], r["view"]) for r in runs}
want = {(l, s, v) for l in links for s in meta["scenarios"] for v in meta["views"]}
need(cells == want, "one run per link, scenario and view: missing %s" % sorted(want - cells))
for r in runs:
    tag = "%s/%s/%s" % (r["link"], r["scenario"], r["view"])
    need(r["ok"] is True, tag + ": the start read wrong data")
    # Only qemu's http driver is known to stall (bench/coldstart's peer_workload).
    need(r["stalled"] is False or (r["scenario"], r["view"]) == ("qemu", "workload"), tag + ": stalled")
    need(num(r["ready_s"]) and r["ready_s"] > 0, tag + ": ready_s")
    if r["view"] != "workload":
        need(num(r["first_byte_s"]) and 0 < r["first_byte_s"] <= r["ready_s"], tag + ": time to the first byte")
    need(num(r["wire_total"]) and r["wire_total"] >= r["wire_ready"] >= 0, tag + ": wire bytes")
    if r["scenario"] != "local":
        need(r["requests_ready"] > 0 and r["fetched_ready"] > 0 and r["wire_ready"] > 0, tag + ": fetched nothing")
    if r["scenario"] in ("lazy", "profile", "repacked", "profile-nobg"):
        need(isinstance(r["fetch"], dict) and r["fetch"]["demand"]["requests"] + r["fetch"]["profile"]["requests"] > 0,
             tag + ": blockd's fetch log summary")
        if r["view"] == "workload" and r["scenario"] != "profile-nobg":
            need(num(r["hydrated_s"]) and r["hydrated_s"] >= r["ready_s"] * 0.5, tag + ": hydration time")
    if r["scenario"] in ("profile", "repacked"):
        need(r["fetch"]["profile"]["requests"] > 0, tag + ": the published profile was prefetched")
    if r["scenario"] == "full-pull":
        need(num(r["pull_s"]) and r["pull_s"] < r["ready_s"], tag + ": pull time")
    need(all(num(r["cpu"][k]) for k in ("wall", "machine", "server", "linkem", "client")), tag + ": CPU seconds")

s = json.load(open(os.path.join(d, "summary.json")))
need(len(s["rows"]) == len(want), "summary rows")
peers = [p for p in ("nbdkit", "qemu") if p in meta["scenarios"]]
for row in s["rows"]:
    need(all(num(row[k]) and row[k] > 0 for k in ("ready_s", "limit_s", "ratio_limit", "bound_s")), "summary numbers")
    need(all(num(row["speedup_vs_" + p]) and row["speedup_vs_" + p] > 0 for p in peers), "ratios to every peer")
    if row["scenario"] in peers:
        need(num(row["cpu_client"]) and row["cpu_client"] > 0, "the CPU seconds of " + row["scenario"])
    if row["scenario"] not in ("local", "full-pull"):
        need(num(row["cpu_per_gib"]) and row["cpu_per_gib"] >= 0, "CPU seconds per GiB of " + row["scenario"])
need(len(s["aims"]) == 2 * len(meta["views"]), "aims per link and view")
for a in s["aims"]:
    need(all(num(a[k]) for k in ("ratio_limit", "speedup_vs_full_pull", "speedup_vs_nbdkit")), "aim ratios")

rows = list(csv.DictReader(open(os.path.join(d, "summary.csv"))))
need(len(rows) == len(want), "summary.csv rows")
for row in rows:
    float(row["ready_s"]), float(row["limit_s"]), float(row["ratio_limit"])
need(len(list(csv.DictReader(open(os.path.join(d, "runs.csv"))))) == len(runs), "runs.csv rows")

md = open(os.path.join(d, "report.md")).read()
for h in ["# Cold start", "## Aims", "## What blockd did", "## Where the CPU went"] + ["## " + v for v in meta["views"]]:
    need(h in md, "report.md section " + h)
table = [l for l in md.splitlines() if l.startswith("| ") and "Gbit/s" in l]
need(len(table) >= len(want), "report.md table rows")
need(all(l.count("|") == table[0].count("|") for l in table[:len(want)]), "report.md table columns")
png = os.path.join(d, "chart.png")
if os.path.exists(png):
    need(open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "chart.png is a PNG")
else:
    need("gnuplot" not in os.popen("command -v gnuplot").read(), "chart.png missing although gnuplot is installed")
print("bench/coldstart --quick: %d runs, %d cells, report well formed" % (len(runs), len(want)))
PY
grep -q "image: \(workspace-quick\|synthetic\)" "$T/coldstart.log" || fail "no quick image reported"
