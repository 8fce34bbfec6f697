#!/usr/bin/env python3
"""Start-up: from exec of `avs-sim serve` to the first `GET /healthz` 200 on
its control listener, with the certificates present (a certs dir made by an
earlier start) and absent (a fresh dir: the CA, server certificate and SNS
signing key are generated), against the bare baseline binary's exec to its
`listening` line (`bench-baseline events`), interleaved runs.

The control URL is read from the simulator's `listening` line (every listener
on port 0), then /healthz is asked over one raw HTTP/1.1 request per try until
it answers 200, so the figure includes the first request being served.

Usage: bench/startup.py [--runs 10]
"""
import argparse, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b


def healthz_ok(host, port):
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def sim_start(certs):
    """ms from exec to /healthz 200."""
    work = tempfile.mkdtemp(prefix="avs-sim-bench-startup-")
    t0 = time.perf_counter()
    proc = subprocess.Popen([b.SIM, "serve", "--avs-listen", "127.0.0.1:0", "--plain-listen", "127.0.0.1:0",
                             "--control-listen", "127.0.0.1:0", "--certs", certs], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        control = None
        for line in proc.stdout:
            m = re.match(r"avs-sim: control listening on http://([\d.]+):(\d+)", line)
            if m:
                control = (m.group(1), int(m.group(2)))
                break
        if not control:
            raise RuntimeError("avs-sim exited before its control listener was up")
        end = time.monotonic() + 10
        while not healthz_ok(*control):
            if time.monotonic() > end:
                raise RuntimeError("no /healthz 200 within 10 s")
        return (time.perf_counter() - t0) * 1000
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def baseline_start():
    """ms from exec of the bare baseline to its listening line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([b.BASELINE, "events", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "listening on" in line:
                return (time.perf_counter() - t0) * 1000
        raise RuntimeError("bench-baseline exited before listening")
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    b.build(sim=True, baseline=True)
    b.log(b.machine())
    present = os.path.join(tempfile.mkdtemp(prefix="avs-sim-bench-certs-"), "certs")
    sim_start(present)  # makes the certificates the "present" runs reuse

    def fresh():
        top = tempfile.mkdtemp(prefix="avs-sim-bench-certs-")
        try:
            return sim_start(os.path.join(top, "certs"))
        finally:
            shutil.rmtree(top, ignore_errors=True)

    figs = b.interleave(a.runs, [("bare baseline", baseline_start), ("avs-sim, certs present", lambda: sim_start(present)),
                                 ("avs-sim, certs absent", fresh)])
    b.report("start-up, exec to /healthz 200 (baseline: exec to listening)", "ms", figs, "bare baseline",
             higher_is_better=False)
    med = statistics.median(figs["avs-sim, certs present"])
    print(f"target <= 50 ms with certificates present: {med:.1f} ms, {'met' if med <= 50 else 'NOT met'}")
    print(f"machine: {b.machine()}")


if __name__ == "__main__":
    main()
