"""Shared harness of the bench/ scripts: install what a bench needs, build the
release binaries, start servers on port 0, read a server's RSS from /proc,
and report medians of interleaved runs with their ratio to a baseline.

Every script imports it (`sys.path` holds bench/ when a script runs from it)
and prints figures the same way, so RESULTS.md can quote them as printed.
"""
import os, re, shutil, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM = os.path.join(ROOT, "target", "release", "avs-sim")
BASELINE_DIR = os.path.join(ROOT, "bench", "baseline")
BASELINE = os.path.join(BASELINE_DIR, "target", "release", "bench-baseline")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def need_apt(command, package):
    """Install a Debian package when its command is missing (root or sudo)."""
    if shutil.which(command):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"installing {package} for {command} ...")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def build(sim=True, baseline=False):
    """Release builds of avs-sim and/or the baseline crate (cargo skips what is fresh)."""
    if sim:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "avs-sim"], cwd=ROOT, check=True)
    if baseline:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=BASELINE_DIR, check=True)


class Server:
    """A server process started with `args`; `urls` maps listener names to
    addresses read from its stdout lines `avs-sim: NAME listening on ADDR`
    (the baseline prints the same lines)."""

    def __init__(self, args, ready="listening", names=(), cwd=None, env=None):
        self.work = cwd or tempfile.mkdtemp(prefix="avs-sim-bench-")
        self.proc = subprocess.Popen(args, cwd=self.work, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.urls = {}
        wanted = set(names)
        for line in self.proc.stdout:
            m = re.match(r"(?:avs-sim|bench-baseline): (\w+) listening on (\S+)", line)
            if m:
                self.urls[m.group(1)] = m.group(2)
            if wanted <= set(self.urls) and (not wanted or m):
                break
        if not wanted <= set(self.urls):
            raise RuntimeError(f"server {args[0]} exited before listening: {self.urls}")

    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def sim_server(extra=(), names=("avs", "plain", "control")):
    """avs-sim serve on port 0 for every listener, with its own certs dir."""
    args = [SIM, "serve", "--avs-listen", "127.0.0.1:0", "--plain-listen", "127.0.0.1:0",
            "--control-listen", "127.0.0.1:0", *extra]
    return Server(args, names=names)


def rss_kib(pid):
    """Resident set size of a process, from /proc/PID/status (VmRSS, KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_http(url, deadline_s=10.0):
    """Wait until GET url answers 200 (a deadline, not a sleep-and-hope)."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            if time.monotonic() > end:
                raise
        time.sleep(0.002)


def interleave(runs, contenders):
    """Run each contender `runs` times, alternating A B A B ..., so that a
    change in machine load hits both alike; returns {name: [figures]}."""
    out = {name: [] for name, _ in contenders}
    for i in range(runs):
        for name, fn in contenders:
            fig = fn()
            log(f"  run {i + 1}/{runs} {name}: {fig:,.1f}")
            out[name].append(fig)
    return out


def report(title, unit, figures, baseline, higher_is_better=True, target=None):
    """Print medians and each contender's ratio to the baseline; returns the ratios.
    `target` is the ratio the issue asks for (met when ratio >= target, or <= for lower-is-better)."""
    base = statistics.median(figures[baseline])
    print(f"## {title}")
    ratios = {}
    for name, figs in figures.items():
        med = statistics.median(figs)
        ratio = med / base if base else float("nan")
        ratios[name] = ratio
        runs = ", ".join(f"{x:,.1f}" for x in figs)
        line = f"{name:>24}: median {med:,.1f} {unit} (runs: {runs})"
        if name != baseline:
            line += f"; ratio to {baseline}: {ratio:.2f}x"
            if target is not None:
                met = ratio >= target if higher_is_better else ratio <= target
                line += f" (target {'>=' if higher_is_better else '<='} {target}x: {'met' if met else 'NOT met'})"
        print(line)
    sys.stdout.flush()
    return ratios


def machine():
    """One line naming the machine: cores, memory, kernel."""
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return f"{os.cpu_count()} cores, {mem_kib / 1048576:.1f} GiB, Linux {os.uname().release}"


def h2load(url, n, c, m, headers=(), data=None, threads=1):
    """Run h2load against url (POST `data`, a file, when given); returns req/s.
    Fails unless every request finished with a 2xx: a fast error is no figure."""
    need_apt("h2load", "nghttp2-client")
    args = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-t", str(threads)]
    for h in headers:
        args += ["-H", h]
    if data:
        args += ["-d", data]
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not rate or not codes or int(codes.group(1)) != n:
        raise RuntimeError(f"h2load against {url}: not every request answered 2xx:\n{out}")
    return float(rate.group(1))


def baseline_server(kind, *flags, names=None):
    """bench-baseline KIND on port 0 (see bench/baseline/src/main.rs)."""
    return Server([BASELINE, kind, "--listen", "127.0.0.1:0", *flags], names=names or (kind,))


def h2load_args():
    """The command line of the h2load benches (events, gateway)."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000, help="requests per run")
    ap.add_argument("--c", type=int, default=100, help="h2load clients (connections)")
    ap.add_argument("--m", type=int, default=10, help="concurrent streams per connection")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10,000 requests, for a try")
    a = ap.parse_args()
    if a.quick:
        a.n = 10_000
    return a


def h2load_versus(a, sim, base_h2c, base_tls, path, headers, data, title, detail, target):
    """The h2load benches' body: h2c then TLS, the bare baseline and avs-sim
    interleaved, each reported as "TITLE, h2c (h2load flags, DETAIL)" against
    `target`; then avs-sim's RSS. Stops the three servers."""
    try:
        for label, sim_url, base_url in (("h2c", sim.urls["plain"], base_h2c.urls["events"]),
                                         ("TLS", sim.urls["avs"], base_tls.urls["events"])):
            run = lambda url: (lambda: h2load(url + path, a.n, a.c, a.m, headers, data))
            figs = interleave(a.runs, [("bare hyper", run(base_url)), ("avs-sim", run(sim_url))])
            report(f"{title}, {label} (h2load -n {a.n} -c {a.c} -m {a.m}, {detail})",
                   "req/s", figs, "bare hyper", target=target)
        print(f"avs-sim RSS after the runs: {sim.rss_kib():,} KiB")
    finally:
        for s in (sim, base_h2c, base_tls):
            s.stop()
    print(f"machine: {machine()}")
