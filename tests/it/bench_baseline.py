#!/usr/bin/env python3
"""The common SKY API client pattern, the benchmark's baseline (see tests/it/bench.rs).

Sequential: one list after another, `limit=500`, following `next_link` (or `offset`) to the end,
and a fixed 1 s sleep on 429. No concurrency, no incremental state.

    bench_baseline.py API_BASE PATH...   (SKY_ACCESS_TOKEN, SKY_SUBSCRIPTION_KEY in the environment)

Prints {"calls": N, "records": N, "sleeps_429": N} as JSON.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

LIMIT = 500


def main():
    base, paths = sys.argv[1], sys.argv[2:]
    headers = {
        "Authorization": "Bearer " + os.environ["SKY_ACCESS_TOKEN"],
        "Bb-Api-Subscription-Key": os.environ["SKY_SUBSCRIPTION_KEY"],
    }
    calls = records = sleeps = 0
    for path in paths:
        url = urllib.parse.urljoin(base, path.lstrip("/")) + "?limit=%d" % LIMIT
        offset = 0
        while url:
            calls += 1
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
                    page = json.load(r)
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    sleeps += 1
                    time.sleep(1)
                    continue
                raise
            value = page.get("value") or []
            records += len(value)
            offset += len(value)
            if page.get("next_link"):
                url = page["next_link"]
            elif len(value) == LIMIT:
                url = urllib.parse.urljoin(base, path.lstrip("/")) + "?limit=%d&offset=%d" % (LIMIT, offset)
            else:
                url = None
    print(json.dumps({"calls": calls, "records": records, "sleeps_429": sleeps}))


if __name__ == "__main__":
    main()
