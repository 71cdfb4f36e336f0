#!/usr/bin/env python3
"""Turns the JSON lines scripts/bench.sh collected into its one table and one JSON file.

    bench_table.py LINES.jsonl OUT.json DATE QUICK [--profile P] [--load LOAD.txt] [--command CMD]

LINES.jsonl holds one object per line, each with a "run" (initial, incremental, full, slow_pages,
baseline, ingest, token, page); LOAD.txt one 1-minute load average per line, sampled during the
run. The table is Markdown, ready for BENCHMARKS.md.
"""
import argparse
import json
import os
import platform
import sys


def machine():
    cpu = "?"
    mem_gib = 0.0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024 / 1024
                    break
    except OSError:
        pass
    return "%s, %d cores (nproc), %.0f GiB RAM, %s %s" % (
        cpu, os.cpu_count() or 0, mem_gib, platform.system(), platform.release())


def load_summary(path):
    """min / mean / max of the sampled 1-minute load averages, or None."""
    if not path:
        return None
    try:
        samples = [float(l) for l in open(path) if l.strip()]
    except (OSError, ValueError):
        return None
    if not samples:
        return None
    return {"samples": len(samples), "min": min(samples), "mean": sum(samples) / len(samples), "max": max(samples)}


def table_rows(rows):
    """(item, what, figure, ratio) for every result line, in item order."""
    table = []

    def add(item, what, figure, ratio=""):
        table.append((item, what, figure, ratio))

    by_run = {}
    for r in rows:
        by_run.setdefault(r["run"], []).append(r)
    runs = by_run.get("initial", []) + by_run.get("incremental", []) + by_run.get("full", [])
    for r in runs:
        calls, ideal = sum(r["calls"]), sum(r["ideal_calls"])
        add("1 quota", "%s sync, %s records" % (r["run"], " + ".join(map(str, r["records"]))),
            "%d calls (ideal %d: %s), %d token calls" % (
                calls, ideal, " + ".join(map(str, r["ideal_calls"])), r["token_calls"]),
            "%.2fx ideal calls" % r["calls_x_ideal"])
    for r in runs:
        add("2 floor", "%s sync at 10 calls/s, 300 ms per call" % r["run"],
            "%.2f s (floor %.2f s)" % (r["seconds"], r["floor_seconds"]), "%.2fx floor" % r["x_floor"])
    for r in by_run.get("slow_pages", []):
        one, part = r["one_chain"], r["partitioned"]
        add("2 slow pages", "initial sync, %d constituents, %d ms per call, one chain" % (r["records"], r["slow_ms"]),
            "%d calls, %.1f s" % (one["calls"], one["seconds"]),
            "%.2fx ideal calls (%d)" % (one["calls"] / r["ideal_calls"], r["ideal_calls"]))
        add("2 slow pages", "the same, split into <= %d chains" % part["max_partitions"],
            "%d calls, %.1f s" % (part["calls"], part["seconds"]),
            "%.2fx one chain's time, %.2fx ideal calls" % (r["time_ratio"], r["call_ratio"]))
    for r in by_run.get("baseline", []):
        add("3 baseline", "sequential client, limit 500, 1 s sleep on 429 (%s records)" %
            " + ".join(map(str, r["records"])),
            "%d calls, %.1f s" % (r["calls"], r["seconds"]),
            "skysync: %.3fx calls, %.3fx time (%.1fx faster)" % (
                r["skysync_calls_ratio"], r["skysync_time_ratio"], r["baseline_x_skysync_time"]))
    for r in by_run.get("ingest", []):
        add("4 ingest", "%s, %d records" % (r["db"], r["records"]),
            "%d records/s" % r["records_per_s"], "peak RSS %.1f MiB" % r["peak_rss_mib"])
    for r in by_run.get("token", []):
        add("5 token", "`skysync token`, cached token, %d runs" % r["runs"],
            "median %.1f ms" % r["median_ms"], "min %.1f, max %.1f ms" % (r["min_ms"], r["max_ms"]))
    page = by_run.get("page", [])
    for r in page:
        add("6 page", r["file"], "%d B" % r["bytes"], "%d B gzip" % r["gzip"])
    if page:
        add("6 page", "total shipped (wasm + JS + app.js)", "%d B" % sum(r["bytes"] for r in page),
            "%d B gzip" % sum(r["gzip"] for r in page))
    return table


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lines")
    ap.add_argument("out")
    ap.add_argument("date")
    ap.add_argument("quick")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--load")
    ap.add_argument("--command", default="scripts/bench.sh")
    args = ap.parse_args(argv)
    rows = [json.loads(l) for l in open(args.lines) if l.strip()]
    table = table_rows(rows)
    load = load_summary(args.load)

    header = ("item", "what", "figure", "ratio")
    widths = [max(len(str(row[i])) for row in table + [header]) for i in range(4)]
    fmt = "| " + " | ".join("%%-%ds" % w for w in widths) + " |"
    print("skysync benchmark, %s, `%s` (%s build)%s" % (
        args.date, args.command, args.profile, ", smoke sizes" if args.quick == "1" else ""))
    print("machine: %s" % machine())
    if load:
        print("load average during the run (1 min, %d samples): min %.1f, mean %.1f, max %.1f" % (
            load["samples"], load["min"], load["mean"], load["max"]))
    print()
    print(fmt % header)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print(fmt % row)
    with open(args.out, "w") as f:
        json.dump({"date": args.date, "command": args.command, "profile": args.profile,
                   "machine": machine(), "load": load, "quick": args.quick == "1", "results": rows},
                  f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
