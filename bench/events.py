#!/usr/bin/env python3
"""Events/s: h2load POSTing a SynchronizeState event (multipart/form-data, the
SDK's framing) to avs-sim and to a bare hyper server answering 204 after
reading the body (bench/baseline), on h2c and on TLS, interleaved runs.

All requests carry one bearer token (avs-sim's default `lenient` auth accepts
any token as a device id), so every event goes to one device; the issue found
the cap the same with 4 tokens. Every answer must be 2xx or the run fails.

Usage: bench/events.py [--n 100000] [--c 100] [--m 10] [--runs 3] [--quick]
"""
import json, os, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b

BOUNDARY = "WhooHooZeerOoonie!"


def event_file(work):
    """The SDK's SynchronizeState event, framed as avs-sim's form::event_body does."""
    doc = {
        "context": [
            {"header": {"namespace": "Speaker", "name": "VolumeState"}, "payload": {"volume": 50, "muted": False}},
            {"header": {"namespace": "SpeechSynthesizer", "name": "SpeechState"},
             "payload": {"token": "", "offsetInMilliseconds": 0, "playerActivity": "FINISHED"}},
        ],
        "event": {"header": {"namespace": "System", "name": "SynchronizeState",
                             "messageId": "0b0f3c4e-bench-4c2c-8f9d-bdfb0c7bf324"}, "payload": {}},
    }
    body = (f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps(doc, separators=(',', ':'))}\r\n--{BOUNDARY}--\r\n")
    path = os.path.join(work, "synchronize-state.multipart")
    with open(path, "wb") as f:
        f.write(body.encode())
    return path


def main():
    a = b.h2load_args()
    b.build(sim=True, baseline=True)
    b.log(b.machine())
    work = tempfile.mkdtemp(prefix="avs-sim-bench-events-")
    data = event_file(work)
    headers = ["authorization: Bearer bench-device-1", f"content-type: multipart/form-data; boundary={BOUNDARY}"]

    sim = b.sim_server(names=("avs", "plain", "control"))
    certs = os.path.join(sim.work, "certs")
    base_h2c = b.baseline_server("events", names=("events",))
    base_tls = b.baseline_server("events", "--tls-cert", os.path.join(certs, "server.pem"),
                                 "--tls-key", os.path.join(certs, "server.key"), names=("events",))
    b.h2load_versus(a, sim, base_h2c, base_tls, "/v20160207/events", headers, data,
                    "events/s", "SynchronizeState, one token", target=0.8)


if __name__ == "__main__":
    main()
