#!/usr/bin/env python3
"""Devices held: server RSS per held device, avs-sim against the bare axum
baseline (`bench-baseline downchannel`), each holding N h2c connections with
an open downchannel, made by `avs-sim load` (one connection, downchannel and
SynchronizeState per device, each with its own token).

Each run starts a fresh server, reads its VmRSS before the devices connect
and once all N are held, and divides the growth by N. Runs are interleaved
(avs-sim, baseline, avs-sim, ...); medians and the ratio are printed per N.

Usage: bench/devices.py [--devices 10000,19000] [--runs 3] [--rate 2000] [--no-baseline] [--no-build]
                        [--baseline-bin PATH]
Needs: cargo (release builds), python3. 19,000 devices need an open-file
limit above 19,064 in both processes: the script raises its soft limit to
the hard one (the children inherit it).
"""
import argparse, json, os, resource, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load(url, pid, devices, rate, extra=()):
    """One `avs-sim load` run; its JSON report."""
    args = [b.SIM, "load", "--devices", str(devices), "--url", url, "--server-pid", str(pid),
            "--rate", str(rate), "--json", *extra]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if not out.stdout.strip():
        raise RuntimeError(f"avs-sim load printed nothing (exit {out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def held_figure(server, url, devices, rate, label):
    """KiB of server RSS per held device for one run (logged with the connect rate)."""
    with server:
        r = load(url, server.pid, devices, rate)
    c = r["connect"]
    b.log(f"    {label}: held {c['held']}/{devices} in {c['secondsToHoldAll']:.2f} s "
          f"({c['devicesPerSecond']:,.0f}/s), failed {c['failed']} {c['failures']['first'][:2]}, retried {c['retries']}, "
          f"RSS {r['rssBeforeKib']} -> {r['rssHeldKib']} KiB, load client {r['clientRssKib']} KiB")
    if c["held"] != devices:
        b.log(f"    {label}: WARNING only {c['held']} of {devices} held; the figure is per held device")
    return r["kibPerDevice"] or float("nan")


def sim_run(devices, rate):
    server = b.sim_server()
    return held_figure(server, server.urls["plain"], devices, rate, "avs-sim")


def baseline_run(devices, rate):
    # Its one listener line names it `downchannel` (or `plain`): take the first.
    server = b.Server([b.BASELINE, "downchannel", "--listen", "127.0.0.1:0"])
    return held_figure(server, next(iter(server.urls.values())), devices, rate, "bare axum")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", default="10000,19000", help="comma-separated device counts")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=2000, help="connections per second")
    ap.add_argument("--no-baseline", action="store_true", help="measure avs-sim only")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    ap.add_argument("--baseline-bin", default=b.BASELINE, help="the bench-baseline binary")
    a = ap.parse_args()
    b.BASELINE = a.baseline_bin
    counts = [int(x) for x in a.devices.split(",") if x]
    if not a.no_build:
        b.build(sim=True, baseline=not a.no_baseline)
    fds = raise_fd_limit()
    print(f"# devices held: {b.machine()}; open-file limit {fds}; rate {a.rate:,.0f}/s; {a.runs} runs interleaved")
    for n in counts:
        if n + 64 > fds:
            b.log(f"WARNING: {n} devices need {n + 64} open files, the limit is {fds}: expect EMFILE failures")
        contenders = [("avs-sim", lambda: sim_run(n, a.rate))]
        if not a.no_baseline:
            contenders.append(("bare axum", lambda: baseline_run(n, a.rate)))
        figures = b.interleave(a.runs, contenders)
        if a.no_baseline:
            vals = figures["avs-sim"]
            print(f"## {n:,} devices: avs-sim median {sorted(vals)[len(vals) // 2]:,.1f} KiB per held device "
                  f"(runs: {', '.join(f'{x:,.1f}' for x in vals)}); no baseline measured")
        else:
            b.report(f"{n:,} devices: server RSS per held device", "KiB/device", figures, "bare axum",
                     higher_is_better=False, target=1.0)


if __name__ == "__main__":
    main()
