#!/usr/bin/env python3
"""Broadcast delivery latency: N devices held on one avs-sim (h2c, by
`avs-sim load`), then K broadcasts (`POST /api/directives/broadcast` with the
load's token prefix), each waited for at every device; latency is measured
at the devices from just before the POST. Each run uses a fresh server;
medians of the runs' p50, p99 and max are printed, with the issue's target
(p99 <= 250 ms at 10,000 devices).

Usage: bench/broadcast.py [--devices 10000] [--broadcasts 10] [--runs 3] [--rate 2000] [--no-build]
Needs: cargo (release build), python3.
"""
import argparse, os, statistics, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b
from devices import load, raise_fd_limit

TARGET_P99_MS = 250.0


def run(devices, broadcasts, rate):
    with b.sim_server() as server:
        r = load(server.urls["plain"], server.pid, devices, rate,
                 ["--control", server.urls["control"], "--broadcasts", str(broadcasts)])
    c, br = r["connect"], r["broadcasts"]
    lat = br["latencyMs"]
    b.log(f"  held {c['held']}/{devices} ({c['devicesPerSecond']:,.0f}/s); delivered {br['delivered']}/{br['expected']} "
          f"(queued {br['queued']}); p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} max {lat['max']:.1f} ms; "
          f"POST p50 {br['postMs']['p50']:.1f} ms")
    return lat, br["delivered"], br["expected"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--broadcasts", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        b.build(sim=True)
    fds = raise_fd_limit()
    print(f"# broadcast: {b.machine()}; open-file limit {fds}; {a.devices:,} devices, "
          f"{a.broadcasts} broadcasts per run, {a.runs} runs")
    runs = [run(a.devices, a.broadcasts, a.rate) for _ in range(a.runs)]
    med = {k: statistics.median(r[0][k] for r in runs) for k in ("p50", "p99", "max")}
    delivered, expected = sum(r[1] for r in runs), sum(r[2] for r in runs)
    each = "; ".join(f"{r[0]['p50']:.1f}/{r[0]['p99']:.1f}/{r[0]['max']:.1f}" for r in runs)
    print(f"## broadcast to {a.devices:,} devices: delivery latency median p50 {med['p50']:.1f} ms, "
          f"p99 {med['p99']:.1f} ms, max {med['max']:.1f} ms (runs p50/p99/max: {each}); "
          f"delivered {delivered}/{expected}; target p99 <= {TARGET_P99_MS:.0f} ms: "
          f"{'met' if med['p99'] <= TARGET_P99_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
