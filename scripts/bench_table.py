#!/usr/bin/env python3
"""Turns the JSON lines scripts/bench.sh collected into its one table and one JSON file.

    bench_table.py LINES.jsonl OUT.json DATE QUICK
"""
import json
import os
import platform
import sys


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s %s" % (cpu, os.cpu_count() or 0, platform.system(), platform.release())


def main():
    lines_path, out_path, date, quick = sys.argv[1:5]
    rows = [json.loads(l) for l in open(lines_path) if l.strip()]
    table = []

    def add(item, what, figure, ratio=""):
        table.append((item, what, figure, ratio))

    by_run = {}
    for r in rows:
        by_run.setdefault(r["run"], []).append(r)
    for r in by_run.get("initial", []) + by_run.get("incremental", []) + by_run.get("full", []):
        calls, ideal = sum(r["calls"]), sum(r["ideal_calls"])
        add("1 quota", "%s sync, %s records" % (r["run"], "+".join(map(str, r["records"]))),
            "%d calls (ideal %d), %d token calls" % (calls, ideal, r["token_calls"]),
            "%.2fx ideal" % r["calls_x_ideal"])
        add("2 floor", "%s sync at 10/s, 300 ms" % r["run"],
            "%.1f s (floor %.1f s)" % (r["seconds"], r["floor_seconds"]), "%.2fx floor" % r["x_floor"])
    for r in by_run.get("slow_pages", []):
        one, part = r["one_chain"], r["partitioned"]
        add("2 slow pages", "%d records, %d ms/call, one chain" % (r["records"], r["slow_ms"]),
            "%d calls, %.1f s" % (one["calls"], one["seconds"]), "%.2fx ideal calls" % (one["calls"] / r["ideal_calls"]))
        add("2 slow pages", "partitions <= %d" % part["max_partitions"],
            "%d calls, %.1f s" % (part["calls"], part["seconds"]),
            "%.2fx one chain's time, %.2fx ideal calls" % (r["time_ratio"], r["call_ratio"]))
    for r in by_run.get("baseline", []):
        add("3 baseline", "sequential, limit 500, 1 s on 429",
            "%d calls, %.1f s" % (r["calls"], r["seconds"]),
            "skysync: %.2fx calls, %.2fx time (%.1fx faster)" % (
                r["skysync_calls_ratio"], r["skysync_time_ratio"], r["baseline_x_skysync_time"]))
    for r in by_run.get("ingest", []):
        add("4 ingest", "%s, %d records" % (r["db"], r["records"]),
            "%d records/s" % r["records_per_s"], "peak RSS %.1f MiB" % r["peak_rss_mib"])
    for r in by_run.get("token", []):
        add("5 token", "`skysync token`, cached, %d runs" % r["runs"],
            "median %.1f ms" % r["median_ms"], "min %.1f, max %.1f ms" % (r["min_ms"], r["max_ms"]))
    page = by_run.get("page", [])
    for r in page:
        add("6 page", r["file"], "%d B" % r["bytes"], "%d B gzip" % r["gzip"])
    if page:
        add("6 page", "total shipped", "%d B" % sum(r["bytes"] for r in page), "%d B gzip" % sum(r["gzip"] for r in page))

    widths = [max(len(str(row[i])) for row in table + [("item", "what", "figure", "ratio")]) for i in range(4)]
    fmt = "| " + " | ".join("%%-%ds" % w for w in widths) + " |"
    print("skysync benchmark, %s, %s%s" % (date, machine(), " (--quick)" if quick == "1" else ""))
    print(fmt % ("item", "what", "figure", "ratio"))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print(fmt % row)
    with open(out_path, "w") as f:
        json.dump({"date": date, "machine": machine(), "quick": quick == "1", "results": rows}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
