#!/usr/bin/env python3
"""SNS deliveries/s: avs-sim against moto's server (PyPI `moto[server]`), both
delivering Notifications of M publishes to the same local HTTP/1.1 receiver
(`bench-baseline receiver`), SignatureVersion 1 and 2, interleaved runs.

Publishing is boto3 against both (avs-sim's Query API on its plain listener,
moto_server), from several publisher threads, PublishBatch of 10 by default
(`--batch 1` for Publish), spread over `--topics` topics (default 8) with one
subscription each, the same on both servers: avs-sim delivers each
subscription's queue in order and bounds it at 1,000 messages (overflow is
dead-lettered), so one topic would measure a queue, not the server, once
publishing outruns delivery. The figure is deliveries counted at the receiver
divided by the time from the first publish to the last delivery. The
subscription is made with boto3's Subscribe; the receiver confirms it by
GETting the SubscribeURL (avs-sim's points at its TLS listener: the receiver
trusts certs/ca.pem). Both sign every Notification with RSA: moto (5.2)
always with SignatureVersion 2 whatever the topic says (and it makes a signing
certificate per message), delivering synchronously inside Publish; avs-sim
with the topic's version, delivering from its queues.

The script makes a venv under target/bench-venv with moto[server] and boto3
and re-runs itself with it.

Usage: bench/sns.py [--m 5000] [--threads 4] [--batch 10] [--topics 8] [--runs 3] [--quick]
"""
import os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "bench-venv")
VPY = os.path.join(VENV, "bin", "python")

if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
    if not os.path.exists(os.path.join(VENV, "bin", "moto_server")):
        print("making target/bench-venv with moto[server] and boto3 ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([VPY, "-m", "pip", "install", "-q", "moto[server]", "boto3"], check=True)
    os.execv(VPY, [VPY, os.path.abspath(__file__), *sys.argv[1:]])

import argparse, json, socket, threading, time, urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b
import boto3


def client(endpoint):
    return boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def counts(receiver):
    with urllib.request.urlopen(receiver + "/count", timeout=10) as r:
        return json.loads(r.read())


def reset(receiver):
    urllib.request.urlopen(urllib.request.Request(receiver + "/count", method="DELETE"), timeout=10).read()


def delivered(c):
    """Notifications: moto sends no x-amz-sns-message-type header, so its land in `other`."""
    return c["notifications"] + c["other"]


def wait_for(cond, deadline_s, what):
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """One SNS server with a topic per signature version subscribed by the receiver."""

    def __init__(self, name, endpoint, receiver, topics):
        self.name, self.endpoint, self.receiver = name, endpoint, receiver
        self.topics = {}
        sns = client(endpoint)
        for version in ("1", "2"):
            self.topics[version] = []
            for k in range(topics):
                arn = sns.create_topic(Name=f"bench-v{version}-{k}")["TopicArn"]
                sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue=version)
                before = counts(receiver)["confirmed"]
                sub = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=f"{receiver}/{name}/v{version}/{k}",
                                    ReturnSubscriptionArn=True)["SubscriptionArn"]
                if name == "avs-sim":  # pending until the receiver GETs the SubscribeURL
                    wait_for(lambda: counts(receiver)["confirmed"] > before, 20, "the subscription's confirmation")
                    wait_for(lambda: any(s["SubscriptionArn"] == sub and "pending" not in s["SubscriptionArn"]
                                         for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]),
                             20, "a confirmed subscription")
                self.topics[version].append(arn)

    def run(self, version, m, threads, batch, deadline_s):
        """Publish m messages; deliveries/s at the receiver, first publish to last delivery."""
        arns = self.topics[version]
        reset(self.receiver)
        per = [m // threads + (1 if i < m % threads else 0) for i in range(threads)]
        clients = [client(self.endpoint) for _ in range(threads)]
        errors = []

        def publish(sns, n, t):
            try:
                i, j = 0, 0
                while i < n:
                    arn = arns[(t + j) % len(arns)]
                    j += 1
                    k = min(batch, n - i)
                    if batch == 1:
                        sns.publish(TopicArn=arn, Message=f"bench message {t}-{i}")
                    else:
                        entries = [{"Id": str(j), "Message": f"bench message {t}-{i + j}"} for j in range(k)]
                        res = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
                        if res.get("Failed"):
                            raise RuntimeError(f"PublishBatch failed: {res['Failed'][:1]}")
                    i += k
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        workers = [threading.Thread(target=publish, args=(c, n, t)) for t, (c, n) in enumerate(zip(clients, per))]
        start = time.time()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        published = time.time()
        if errors:
            raise RuntimeError(f"{self.name}: publishing failed: {errors[0]}")
        end = time.monotonic() + deadline_s
        while delivered(counts(self.receiver)) < m and time.monotonic() < end:
            time.sleep(0.02)
        c = counts(self.receiver)
        got = delivered(c)
        if got < m:
            raise RuntimeError(f"{self.name}: {got} of {m} notifications delivered within {deadline_s} s "
                               "(avs-sim queues 1,000 messages per subscription, then dead-letters: more --topics?)")
        b.log(f"    {self.name} v{version}: published in {published - start:.2f} s "
              f"({m / (published - start):,.0f}/s), last delivery {c['last_unix'] - start:.2f} s after the first publish")
        return got / (c["last_unix"] - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=5000, help="publishes per run")
    ap.add_argument("--threads", type=int, default=4, help="publisher threads")
    ap.add_argument("--batch", type=int, default=10, help="messages per PublishBatch (1: Publish)")
    ap.add_argument("--topics", type=int, default=8,
                    help="topics per signature version, one subscription each; publishes are spread over them")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--deadline", type=float, default=300, help="seconds to wait for all deliveries")
    ap.add_argument("--quick", action="store_true", help="500 publishes, for a try")
    a = ap.parse_args()
    if a.quick:
        a.m = 500
    b.build(sim=True, baseline=True)
    b.log(b.machine())
    sim = b.sim_server()
    port = free_port()
    moto = subprocess.Popen([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    moto_url = f"http://127.0.0.1:{port}"
    receiver = b.baseline_server("receiver", "--ca", os.path.join(sim.work, "certs", "ca.pem"))
    try:
        wait_for(lambda: _up(moto_url), 30, "moto_server")
        rurl = receiver.urls["receiver"]
        if a.m / a.topics > 900:
            b.log(f"warning: ~{a.m // a.topics} messages per subscription; avs-sim queues 1,000 per subscription")
        targets = [Target("moto", moto_url, rurl, a.topics), Target("avs-sim", sim.urls["plain"], rurl, a.topics)]
        for version in ("1", "2"):
            figs = b.interleave(a.runs, [(t.name, (lambda t=t: t.run(version, a.m, a.threads, a.batch, a.deadline)))
                                         for t in targets])
            b.report(f"SNS deliveries/s, SignatureVersion {version} ({a.m} publishes, {a.threads} boto3 threads, "
                     f"batch {a.batch}, {a.topics} topics, one subscription each, one receiver)", "deliveries/s", figs, "moto", target=20)
    finally:
        for s in (sim, receiver):
            s.stop()
        moto.terminate()
        moto.wait()
    print(f"machine: {b.machine()}")


def _up(url):
    try:
        urllib.request.urlopen(url + "/", timeout=1).read()
        return True
    except urllib.error.HTTPError:
        return True
    except Exception:  # noqa: BLE001 - not listening yet
        return False


if __name__ == "__main__":
    main()
