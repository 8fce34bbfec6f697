#!/usr/bin/env python3
"""Benchmark-style check of injected latency: the median added latency of
`GET /ping` on one HTTP/2 connection, with and without a `latency` fault,
measured in the same run. Tests only assert lower bounds; this reports how
close the injected delay is to what was asked.

Usage: bench/fault_latency.py [--bin target/release/avs-sim] [--ms 50] [--n 40]
Needs: curl (with HTTP/2), python3.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request

def control(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")

def ping_times(avs, ca, n):
    """n pings over one TLS HTTP/2 connection (curl reuses it); per-request total times in ms.
    TLS, not h2c: curl 7.88 cannot reuse an --http2-prior-knowledge connection
    (curl/curl#10634, fixed by curl/curl#10643)."""
    port = avs.rsplit(":", 1)[1]
    urls = [f"https://localhost:{port}/ping"] * n
    out = subprocess.run(["curl", "-s", "--http2", "--cacert", ca, "-H", "authorization: Bearer bench",
                          "-o", "/dev/null", "-w", "%{time_total}\\n", *urls], capture_output=True, text=True, check=True).stdout
    return [float(x) * 1000 for x in out.split()]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/avs-sim")
    ap.add_argument("--ms", type=int, default=50)
    ap.add_argument("--n", type=int, default=40)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="avs-sim-bench-")
    sim = subprocess.Popen([os.path.abspath(a.bin), "serve", "--avs-listen", "127.0.0.1:0", "--plain-listen", "127.0.0.1:0",
                            "--control-listen", "127.0.0.1:0"], cwd=work, stdout=subprocess.PIPE, text=True)
    urls = {}
    for line in sim.stdout:
        m = re.match(r"avs-sim: (\w+) listening on (\S+)", line)
        if m:
            urls[m.group(1)] = m.group(2)
        if line.startswith("avs-sim: CA certificate"):
            break
    try:
        ca = os.path.join(work, "certs", "ca.pem")
        base = ping_times(urls["avs"], ca, a.n)
        # Every connection from now on gets the latency (a connection-level rule at accept).
        control(urls["control"], "POST", "/api/faults",
                {"id": "lat", "when": {"face": "server"}, "then": {"action": "latency", "ms": a.ms}})
        faulted = ping_times(urls["avs"], ca, a.n)
    finally:
        sim.terminate()
        sim.wait()
    b, f = statistics.median(base), statistics.median(faulted)
    added = f - b
    print(f"pings per run: {a.n}; asked latency: {a.ms} ms")
    print(f"median without fault: {b:.2f} ms; with fault: {f:.2f} ms; added: {added:.2f} ms; ratio added/asked: {added / a.ms:.2f}")
    ok = added >= a.ms * 0.9 and added <= a.ms * 1.5 + 5
    print("within tolerance (0.9x .. 1.5x + 5 ms):", "yes" if ok else "NO")
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
