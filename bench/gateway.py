#!/usr/bin/env python3
"""Gateway ChangeReports/s: h2load POSTing an Alexa.ChangeReport to avs-sim's
event gateway (`POST /v3/events`, validation on, the registry updated per
report) and to a bare hyper server answering 202 after reading the body
(bench/baseline), h2c and TLS, interleaved runs.

avs-sim gets a config file with one skill and one user whose `gateway_token`
is accepted without AcceptGrant; the endpoint is discovered first with an
AddOrUpdateReport (a ChangeReport must be about an endpoint Alexa knows).
Every answer must be 2xx (202) or the run fails.

Usage: bench/gateway.py [--n 100000] [--c 100] [--m 10] [--runs 3] [--quick]
"""
import json, os, sys, tempfile, urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b

TOKEN = "bench-gateway-token"
CONFIG = f"""
[smarthome]
validation = "default"

[[skills]]
id = "bench"
command = ["true"]

[[users]]
id = "bench-user"
skill = "bench"
token = "bench-user-token"
gateway_token = "{TOKEN}"
"""


def scope():
    return {"type": "BearerToken", "token": TOKEN}


def prop(namespace, name, value):
    return {"namespace": namespace, "name": name, "value": value,
            "timeOfSample": "2026-01-01T00:00:00Z", "uncertaintyInMilliseconds": 0}


def add_or_update():
    iface = lambda i, p: {"type": "AlexaInterface", "interface": i, "version": "3",
                          "properties": {"supported": [{"name": p}], "proactivelyReported": True, "retrievable": True}}
    endpoint = {"endpointId": "lamp-1", "manufacturerName": "Sample Manufacturer", "description": "A bench light",
                "friendlyName": "Bench lamp", "displayCategories": ["LIGHT"],
                "capabilities": [{"type": "AlexaInterface", "interface": "Alexa", "version": "3"},
                                 iface("Alexa.PowerController", "powerState"),
                                 iface("Alexa.EndpointHealth", "connectivity")]}
    return {"event": {"header": {"namespace": "Alexa.Discovery", "name": "AddOrUpdateReport", "payloadVersion": "3",
                                 "messageId": "bench-discovery-1"},
                      "payload": {"endpoints": [endpoint], "scope": scope()}}}


def change_report():
    return {"event": {"header": {"namespace": "Alexa", "name": "ChangeReport", "payloadVersion": "3",
                                 "messageId": "bench-change-report-1"},
                      "endpoint": {"scope": scope(), "endpointId": "lamp-1"},
                      "payload": {"change": {"cause": {"type": "PHYSICAL_INTERACTION"},
                                             "properties": [prop("Alexa.PowerController", "powerState", "ON")]}}},
            "context": {"properties": [prop("Alexa.EndpointHealth", "connectivity", {"value": "OK"})]}}


def post(url, doc):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                 headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def main():
    a = b.h2load_args()
    b.build(sim=True, baseline=True)
    b.log(b.machine())
    work = tempfile.mkdtemp(prefix="avs-sim-bench-gateway-")
    config = os.path.join(work, "bench.toml")
    with open(config, "w") as f:
        f.write(CONFIG)
    data = os.path.join(work, "change-report.json")
    with open(data, "w") as f:
        json.dump(change_report(), f, separators=(",", ":"))
    headers = [f"authorization: Bearer {TOKEN}", "content-type: application/json"]

    sim = b.sim_server(extra=("--config", config))
    certs = os.path.join(sim.work, "certs")
    base_h2c = b.baseline_server("events")
    base_tls = b.baseline_server("events", "--tls-cert", os.path.join(certs, "server.pem"),
                                 "--tls-key", os.path.join(certs, "server.key"))
    try:
        status = post(sim.urls["plain"] + "/v3/events", add_or_update())
        if status != 202:
            raise RuntimeError(f"AddOrUpdateReport answered {status}")
        # One report answered 202 before the clock starts: the endpoint is known, the token accepted.
        post(sim.urls["plain"] + "/v3/events", change_report())
    except BaseException:
        for s in (sim, base_h2c, base_tls):
            s.stop()
        raise
    b.h2load_versus(a, sim, base_h2c, base_tls, "/v3/events", headers, data,
                    "gateway ChangeReports/s", "validation on", target=0.5)


if __name__ == "__main__":
    main()
