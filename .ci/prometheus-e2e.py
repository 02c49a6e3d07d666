#!/usr/bin/env python3
"""End to end with a real Prometheus: it scrapes the daemon running against the
simulated org (`genesys-queue-sync demo`), evaluates the shipped alert rules, and
answers the dashboard's queries.

    .ci/prometheus-e2e.py BINARY

Checks, each with a bounded wait:
  1. the scrape target is up;
  2. a query through Prometheus' HTTP API returns the daemon's series
     (build_info with the binary's version, rows written, per-queue values);
  3. every rule of deploy/monitoring/alerts.yml evaluates without error;
  4. every query of deploy/monitoring/dashboard.json evaluates and returns data.

Everything listens on 127.0.0.1 and is stopped at the end. Exits non-zero on the
first failed check, printing what was seen.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = "genesys-queue-sync"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, seconds, probe):
    """Calls probe() every 0.5 s until it returns something truthy, at most `seconds`."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.5)
    raise SystemExit(f"FAIL: {what} within {seconds} s (last seen: {last!r})")


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def main():
    binary = os.path.abspath(sys.argv[1])
    version_line = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    version = version_line.split()[1]
    work = tempfile.mkdtemp(prefix="prometheus-e2e.")
    procs = []
    try:
        # The daemon against the simulator, a cycle every 2 s: at 1 s the demo's budget
        # (240 requests/minute = 4 a cycle) is nearly all spent on reads (observation query,
        # name check, heartbeat read-back), so too few rows are written for the checks below.
        demo_out = open(os.path.join(work, "demo.out"), "w+")
        demo = subprocess.Popen(
            [binary, "demo", "--every", "2"],
            stdout=demo_out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
        procs.append(demo)

        def demo_addr():
            demo_out.seek(0)
            m = re.search(r"metrics at http://(127\.0\.0\.1:\d+)/metrics", demo_out.read())
            return m and m.group(1)

        target = wait_for("the demo prints its metrics address", 30, demo_addr)
        print(f"daemon (demo) metrics at {target}")

        port = free_port()
        shutil.copy(os.path.join(ROOT, "deploy/monitoring/alerts.yml"), work)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "rule_files:\n  - alerts.yml\n"
                f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n"
            )
        prom_log = open(os.path.join(work, "prometheus.log"), "w+")
        prom = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={work}/prometheus.yml",
                f"--storage.tsdb.path={work}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=prom_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
        )
        procs.append(prom)
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(expr):
            r = get_json(f"{api}/query?" + urllib.parse.urlencode({"query": expr}))
            if r.get("status") != "success":
                raise ValueError(f"{expr}: {r}")
            return r["data"]["result"]

        # 1. The scrape succeeds.
        def target_up():
            targets = get_json(f"{api}/targets")["data"]["activeTargets"]
            return [t for t in targets if t["labels"].get("job") == JOB and t["health"] == "up"]

        up = wait_for("Prometheus scrapes the daemon (target health up)", 60, target_up)
        print(f"PASS: target {up[0]['scrapeUrl']} is up")

        # 2. The daemon's series, through the query API.
        info = wait_for("genesys_queue_sync_build_info in Prometheus", 30,
                        lambda: query(f'genesys_queue_sync_build_info{{job="{JOB}"}}'))
        labels = info[0]["metric"]
        assert labels["version"] == version, f"build_info version {labels} vs --version {version}"
        print(f"PASS: build_info version={labels['version']} revision={labels['revision']}")
        written = wait_for("rows written > 0", 30,
                           lambda: [r for r in query(f'genesys_queue_sync_rows_total{{job="{JOB}", result="written"}}')
                                    if float(r["value"][1]) > 0])
        print(f"PASS: rows_total{{result=written}} = {written[0]['value'][1]}")
        queues = wait_for("per-queue series for Sales", 30,
                          lambda: query(f'{{job="{JOB}", queue="Sales", __name__=~"genesys_queue_sync_queue.*"}}'))
        print(f"PASS: {len(queues)} per-queue series for Sales")
        wait_for("ready = 1", 30, lambda: [r for r in query("genesys_queue_sync_ready") if r["value"][1] == "1"])
        print("PASS: genesys_queue_sync_ready = 1")

        # 3. Every shipped rule evaluates against the real series.
        def rules_ok():
            groups = get_json(f"{api}/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if not rules or any(r.get("lastEvaluation", "").startswith("0001") for r in rules):
                return None
            bad = [r for r in rules if r.get("health") != "ok"]
            if bad:
                raise SystemExit(f"FAIL: rules with errors: {json.dumps(bad, indent=1)}")
            return rules

        rules = wait_for("every alert rule evaluated", 30, rules_ok)
        firing = [r["name"] for r in rules if r.get("state") == "firing"]
        print(f"PASS: {len(rules)} alert rules evaluate without error (firing: {firing or 'none'})")
        critical = {"GenesysQueueSyncDown", "GenesysQueueSyncAbsent", "GenesysQueueSyncTableStale"}
        assert not critical & set(firing), f"a healthy daemon fires {firing}"

        # 4. Every dashboard query, with the variables as "All" would set them.
        dash = json.load(open(os.path.join(ROOT, "deploy/monitoring/dashboard.json")))
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]

        def substitute(e):
            for var, val in (("$__rate_interval", "15s"), ("$job", ".+"), ("$instance", ".+"), ("$queue", ".+")):
                e = e.replace(var, val)
            return e

        def all_answer():
            empty = [e for e in exprs if not query(substitute(e))]
            return not empty or (print(f"  waiting for data: {empty}") and False)

        wait_for("every dashboard query returns data", 30, all_answer)
        print(f"PASS: {len(exprs)} dashboard queries evaluate and return data")
        print("prometheus-e2e: OK")
    except (AssertionError, SystemExit) as e:
        for name in ("demo.out", "prometheus.log"):
            path = os.path.join(work, name)
            if os.path.exists(path):
                print(f"--- last lines of {name}", file=sys.stderr)
                print("".join(open(path).readlines()[-30:]), file=sys.stderr)
        print(e if isinstance(e, SystemExit) else f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
