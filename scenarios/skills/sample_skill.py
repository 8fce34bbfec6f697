#!/usr/bin/env python3
"""A sample Alexa smart home skill, written as an AWS Lambda handler.

avs-sim plays Alexa toward it. Python 3 standard library only: copy it and
replace the device logic with your own.

Three ways to run it:

  * on AWS Lambda (or the Lambda Runtime Interface Emulator): the handler
    is ``sample_skill.lambda_handler``;
  * as an avs-sim ``command`` skill: ``python3 sample_skill.py [flags]``
    reads the directive JSON on stdin and writes the answer JSON on stdout;
  * as an avs-sim ``url`` skill: ``python3 sample_skill.py --serve PORT``
    answers every POST with the handler's result, as the Runtime Interface
    Emulator does (port 0 picks a free port; the bound port is printed on
    the first line of stdout).

What it answers:

  * Alexa.Discovery.Discover: the six devices of the Alexa.Discovery page's
    example (seed-discover-response.json beside this file), with a fresh
    messageId;
  * PowerController TurnOn/TurnOff, BrightnessController SetBrightness,
    ThermostatController SetTargetTemperature, LockController Lock/Unlock:
    Alexa.Response with the new state in context.properties;
  * SceneController Activate/Deactivate: ActivationStarted /
    DeactivationStarted;
  * Alexa.ReportState: Alexa.StateReport;
  * Alexa.Authorization.AcceptGrant: swaps the grant code for gateway tokens
    at $AVS_SIM_TOKEN_URL, then AcceptGrant.Response (ErrorResponse
    ACCEPT_GRANT_FAILED when the swap fails).

Flags that make it misbehave or work asynchronously (for tests and
scenarios); run with --help for the list.

Events to the Alexa event gateway ($AVS_SIM_GATEWAY_URL, avs-sim's
POST /v3/events) are posted by a detached child process after the answer
is written. It stands in for the worker a real skill would use: AWS Lambda
freezes a function once it returns, so a Lambda skill posts before
returning or hands the event to another function (a queue, Step
Functions). Posts that fail are logged to the file named by
$SAMPLE_SKILL_LOG (default: sample-skill.log in the temp directory).
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "seed-discover-response.json")


# ---------------------------------------------------------------------------
# Options. On Lambda there is no argv: the defaults (a well-behaved skill)
# apply, and the URLs, client id and secret come from the environment.
# ---------------------------------------------------------------------------


def parse_options(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--serve", type=int, metavar="PORT", help="answer HTTP POSTs on 127.0.0.1:PORT (0: any)")
    p.add_argument("--slow", type=float, default=0, metavar="SECONDS", help="sleep this long before answering")
    p.add_argument("--crash", action="store_true", help="fail with a traceback (exit status 3; HTTP 500 when serving)")
    p.add_argument("--not-json", action="store_true", help="answer with text that is not JSON")
    p.add_argument("--invalid", action="store_true", help="discover one broken endpoint besides the six good ones")
    p.add_argument("--deferred", action="store_true", help="answer control directives with DeferredResponse, "
                   "then post the real Response to the gateway")
    p.add_argument("--change-report", action="store_true", help="after TurnOn/TurnOff, post a ChangeReport")
    p.add_argument("--proactive", action="store_true", help="after AcceptGrant, post an AddOrUpdateReport "
                   "(appliance-007), then a DeleteReport for it")
    p.add_argument("--gateway-token", default=os.environ.get("AVS_SIM_GATEWAY_TOKEN"), metavar="TOKEN",
                   help="the bearer token used at the gateway (default $AVS_SIM_GATEWAY_TOKEN)")
    p.add_argument("--gateway-url", default=os.environ.get("AVS_SIM_GATEWAY_URL"), metavar="URL",
                   help="the event gateway (default $AVS_SIM_GATEWAY_URL)")
    p.add_argument("--token-url", default=os.environ.get("AVS_SIM_TOKEN_URL"), metavar="URL",
                   help="LWA's token endpoint (default $AVS_SIM_TOKEN_URL)")
    p.add_argument("--client-id", default=os.environ.get("SKILL_CLIENT_ID", "sample-skill"),
                   help="the 'send Alexa events' client id (default $SKILL_CLIENT_ID or sample-skill)")
    p.add_argument("--client-secret", default=os.environ.get("SKILL_CLIENT_SECRET", "sample-secret"),
                   help="its secret (default $SKILL_CLIENT_SECRET or sample-secret)")
    p.add_argument("--pid-file", metavar="PATH", help="write this process's id to PATH first")
    return p.parse_args(argv)


OPTIONS = parse_options([])


# ---------------------------------------------------------------------------
# Message helpers
# ---------------------------------------------------------------------------


def now():
    """timeOfSample: UTC, milliseconds, 'Z' (YYYY-MM-DDThh:mm:ss.sssZ)."""
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def header(namespace, name, correlation_token=None):
    h = {"namespace": namespace, "name": name, "payloadVersion": "3", "messageId": str(uuid.uuid4())}
    if correlation_token:
        h["correlationToken"] = correlation_token
    return h


def prop(namespace, name, value):
    return {"namespace": namespace, "name": name, "value": value,
            "timeOfSample": now(), "uncertaintyInMilliseconds": 0}


def connectivity():
    return prop("Alexa.EndpointHealth", "connectivity", {"value": "OK"})


def bearer(token):
    return {"type": "BearerToken", "token": token}


def seed_endpoints():
    with open(SEED) as f:
        return json.load(f)["event"]["payload"]["endpoints"]


# The state this sample pretends each kind of device is in. A real skill
# asks its device cloud.
DEFAULT_STATE = {
    ("Alexa.PowerController", "powerState"): "OFF",
    ("Alexa.BrightnessController", "brightness"): 75,
    ("Alexa.ColorTemperatureController", "colorTemperatureInKelvin"): 2700,
    ("Alexa.ColorController", "color"): {"hue": 350.5, "saturation": 0.7138, "brightness": 0.6524},
    ("Alexa.ThermostatController", "targetSetpoint"): {"value": 21.0, "scale": "CELSIUS"},
    ("Alexa.ThermostatController", "lowerSetpoint"): {"value": 18.0, "scale": "CELSIUS"},
    ("Alexa.ThermostatController", "upperSetpoint"): {"value": 24.0, "scale": "CELSIUS"},
    ("Alexa.ThermostatController", "thermostatMode"): "HEAT",
    ("Alexa.TemperatureSensor", "temperature"): {"value": 20.5, "scale": "CELSIUS"},
    ("Alexa.LockController", "lockState"): "LOCKED",
    ("Alexa.EndpointHealth", "connectivity"): {"value": "OK"},
}


def declared(endpoint_id, retrievable_only=False, interfaces=False):
    """The (interface, property) pairs the seed declares for the endpoint,
    in order (with interfaces=True: the interface names); None for an
    endpoint this skill does not have."""
    for e in seed_endpoints():
        if e["endpointId"] != endpoint_id:
            continue
        if interfaces:
            return [cap["interface"] for cap in e["capabilities"]]
        out = []
        for cap in e["capabilities"]:
            props = cap.get("properties", {})
            if retrievable_only and not props.get("retrievable"):
                continue
            out.extend((cap["interface"], s["name"]) for s in props.get("supported", []))
        return out
    return None


def retrievable_state(endpoint_id):
    """Every retrievable property the seed declares for the endpoint."""
    keys = declared(endpoint_id, retrievable_only=True)
    if keys is None:
        return None
    return [prop(ns, name, DEFAULT_STATE[(ns, name)]) for ns, name in keys if (ns, name) in DEFAULT_STATE]


# ---------------------------------------------------------------------------
# The handler
# ---------------------------------------------------------------------------


def lambda_handler(event, context):
    """Alexa's directive in, the skill's answer out (AWS Lambda's signature)."""
    directive = event["directive"]
    h = directive["header"]
    name = (h["namespace"], h["name"])
    if name == ("Alexa.Discovery", "Discover"):
        return discover()
    if name == ("Alexa.Authorization", "AcceptGrant"):
        return accept_grant(directive)
    if name == ("Alexa", "ReportState"):
        return report_state(directive)
    if name in CONTROL:
        return control(directive, CONTROL[name])
    return error(directive, "INVALID_DIRECTIVE", "this sample does not handle %s.%s" % name)


def discover():
    endpoints = seed_endpoints()
    if OPTIONS.invalid:
        broken = copy.deepcopy(endpoints[0])
        # A space is allowed in endpointId, a backslash is not (reference
        # rule 6); the schema never caught it (alexa-smarthome#60).
        broken["endpointId"] = "appliance 007\\broken"
        broken["friendlyName"] = "Broken Light"
        endpoints.append(broken)
    return {"event": {"header": header("Alexa.Discovery", "Discover.Response"),
                      "payload": {"endpoints": endpoints}}}


# Control directives: the property each one changes and its new value,
# computed from the directive's payload.
CONTROL = {
    ("Alexa.PowerController", "TurnOn"): lambda p: [("Alexa.PowerController", "powerState", "ON")],
    ("Alexa.PowerController", "TurnOff"): lambda p: [("Alexa.PowerController", "powerState", "OFF")],
    ("Alexa.BrightnessController", "SetBrightness"):
        lambda p: [("Alexa.BrightnessController", "brightness", p["brightness"])],
    ("Alexa.ThermostatController", "SetTargetTemperature"):
        lambda p: [("Alexa.ThermostatController", "targetSetpoint", p["targetSetpoint"])],
    ("Alexa.LockController", "Lock"): lambda p: [("Alexa.LockController", "lockState", "LOCKED")],
    ("Alexa.LockController", "Unlock"): lambda p: [("Alexa.LockController", "lockState", "UNLOCKED")],
    ("Alexa.SceneController", "Activate"): None,
    ("Alexa.SceneController", "Deactivate"): None,
}


# What this sample's thermostats accept, in degrees Celsius.
SETPOINT_RANGE = (4.0, 35.0)


def celsius(setpoint):
    value, scale = float(setpoint["value"]), setpoint.get("scale", "CELSIUS")
    return {"CELSIUS": value, "FAHRENHEIT": (value - 32) * 5 / 9, "KELVIN": value - 273.15}[scale]


def control(directive, change):
    h = directive["header"]
    endpoint = directive["endpoint"]
    token = h.get("correlationToken")
    interfaces = declared(endpoint["endpointId"], interfaces=True)
    if interfaces is None:
        return error(directive, "NO_SUCH_ENDPOINT", "no endpoint %r" % endpoint["endpointId"])
    if h["namespace"] not in interfaces:
        return error(directive, "INVALID_DIRECTIVE",
                     "%s does not support %s" % (endpoint["endpointId"], h["namespace"]))
    if h["name"] == "SetTargetTemperature":
        low, high = SETPOINT_RANGE
        if not low <= celsius(directive["payload"]["targetSetpoint"]) <= high:
            answer = error(directive, "TEMPERATURE_VALUE_OUT_OF_RANGE", "the thermostat takes 4-35 C")
            answer["event"]["payload"]["validRange"] = {
                "minimumValue": {"value": low, "scale": "CELSIUS"},
                "maximumValue": {"value": high, "scale": "CELSIUS"}}
            return answer
    if change is None:
        answer = scene_started(directive)
    else:
        properties = [prop(ns, n, v) for ns, n, v in change(directive.get("payload", {}))]
        if ("Alexa.EndpointHealth", "connectivity") in (declared(endpoint["endpointId"]) or []):
            properties.append(connectivity())
        answer = {"event": {"header": header("Alexa", "Response", token), "endpoint": endpoint, "payload": {}},
                  "context": {"properties": properties}}
    if OPTIONS.deferred:
        # The real answer goes to the gateway, with the gateway token in the scope.
        later = copy.deepcopy(answer)
        later["event"]["header"]["messageId"] = str(uuid.uuid4())
        later["event"]["endpoint"] = {"scope": bearer(OPTIONS.gateway_token), "endpointId": endpoint["endpointId"]}
        post_later([later], OPTIONS.gateway_token, delay=1)
        return {"event": {"header": header("Alexa", "DeferredResponse", token),
                          "payload": {"estimatedDeferralInSeconds": 7}}}
    if OPTIONS.change_report and h["namespace"] == "Alexa.PowerController":
        post_later([change_report(endpoint["endpointId"], answer["context"]["properties"][0])],
                   OPTIONS.gateway_token, delay=0)
    return answer


def scene_started(directive):
    """SceneController answers with ActivationStarted / DeactivationStarted."""
    h = directive["header"]
    name = "ActivationStarted" if h["name"] == "Activate" else "DeactivationStarted"
    return {"event": {"header": header("Alexa.SceneController", name, h.get("correlationToken")),
                      "endpoint": directive["endpoint"],
                      "payload": {"cause": {"type": "VOICE_INTERACTION"}, "timestamp": now()}},
            "context": {}}


def change_report(endpoint_id, changed):
    """The change, caused by a voice directive here, and in context every
    other retrievable property (the documentation asks for them)."""
    others = [p for p in retrievable_state(endpoint_id) or []
              if (p["namespace"], p["name"]) != (changed["namespace"], changed["name"])]
    return {"event": {"header": header("Alexa", "ChangeReport"),
                      "endpoint": {"scope": bearer(OPTIONS.gateway_token), "endpointId": endpoint_id},
                      "payload": {"change": {"cause": {"type": "VOICE_INTERACTION"}, "properties": [changed]}}},
            "context": {"properties": others}}


def report_state(directive):
    endpoint = directive["endpoint"]
    state = retrievable_state(endpoint["endpointId"])
    if state is None:
        return error(directive, "NO_SUCH_ENDPOINT", "no endpoint %r" % endpoint["endpointId"])
    return {"event": {"header": header("Alexa", "StateReport", directive["header"].get("correlationToken")),
                      "endpoint": endpoint, "payload": {}},
            "context": {"properties": state}}


def error(directive, kind, message):
    event = {"header": header("Alexa", "ErrorResponse", directive["header"].get("correlationToken")),
             "payload": {"type": kind, "message": message}}
    if "endpoint" in directive:
        event["endpoint"] = directive["endpoint"]
    return {"event": event}


def accept_grant(directive):
    """Swap the grant code at LWA for the tokens used at the gateway."""
    code = directive["payload"]["grant"]["code"]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "client_id": OPTIONS.client_id, "client_secret": OPTIONS.client_secret})
    try:
        if not OPTIONS.token_url:
            raise ValueError("no token URL (set AVS_SIM_TOKEN_URL or --token-url)")
        req = urllib.request.Request(OPTIONS.token_url, data=form.encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=5) as r:
            tokens = json.load(r)
        access = tokens["access_token"]
    except (OSError, ValueError, KeyError) as e:
        detail = e.read().decode(errors="replace") if isinstance(e, urllib.error.HTTPError) else str(e)
        return {"event": {"header": header("Alexa.Authorization", "ErrorResponse"),
                          "payload": {"type": "ACCEPT_GRANT_FAILED",
                                      "message": "cannot swap the grant code: %s" % detail}}}
    # A real skill stores access_token and refresh_token for this customer.
    if OPTIONS.proactive:
        added = copy.deepcopy(seed_endpoints()[0])
        added["endpointId"] = "appliance-007"
        added["friendlyName"] = "Porch Light"
        add = {"event": {"header": header("Alexa.Discovery", "AddOrUpdateReport"),
                         "payload": {"endpoints": [added], "scope": bearer(access)}}}
        delete = {"event": {"header": header("Alexa.Discovery", "DeleteReport"),
                            "payload": {"endpoints": [{"endpointId": "appliance-007"}], "scope": bearer(access)}}}
        post_later([add, delete], access, delay=0)
    return {"event": {"header": header("Alexa.Authorization", "AcceptGrant.Response"), "payload": {}}}


# ---------------------------------------------------------------------------
# Posting to the gateway after the answer
# ---------------------------------------------------------------------------


def post_later(events, token, delay):
    """Post `events` in order (each only once the previous got 202) from a
    detached process: its own session, so whoever stops this handler's
    process group does not stop it, and no inherited stdout to hold the
    answer pipe open."""
    if not (OPTIONS.gateway_url and token):
        sys.stderr.write("sample skill: no gateway URL or token, events not posted\n")
        return
    plan = json.dumps({"url": OPTIONS.gateway_url, "token": token, "delay": delay, "events": events})
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "--post-plan", plan],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)


def log_failure(text):
    path = os.environ.get("SAMPLE_SKILL_LOG") or os.path.join(tempfile.gettempdir(), "sample-skill.log")
    with open(path, "a") as f:
        f.write("%s %s\n" % (now(), text))


def run_plan(plan):
    time.sleep(plan["delay"])
    for event in plan["events"]:
        name = "%(namespace)s.%(name)s" % event["event"]["header"]
        req = urllib.request.Request(plan["url"], data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer %s" % plan["token"]})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                if r.status != 202:
                    log_failure("%s: HTTP %d" % (name, r.status))
                    return 1
        except OSError as e:
            detail = e.read().decode(errors="replace") if isinstance(e, urllib.error.HTTPError) else str(e)
            log_failure("%s: %s" % (name, detail))
            return 1
    return 0


# ---------------------------------------------------------------------------
# Running outside Lambda
# ---------------------------------------------------------------------------


def invoke(raw):
    """One invocation with the misbehaviour flags applied: the answer's text."""
    if OPTIONS.slow:
        time.sleep(OPTIONS.slow)
    if OPTIONS.crash:
        raise RuntimeError("sample skill: --crash")
    if OPTIONS.not_json:
        return "this is not JSON\n"
    return json.dumps(lambda_handler(json.loads(raw), None))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            status, body = 200, invoke(raw)
        except Exception as e:
            # The shape of a Lambda function error.
            status = 500
            body = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__,
                               "stackTrace": traceback.format_exc().splitlines()})
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("sample skill: " + fmt % args + "\n")


def main(argv):
    if argv[:1] == ["--post-plan"]:
        return run_plan(json.loads(argv[1]))
    global OPTIONS
    OPTIONS = parse_options(argv)
    if OPTIONS.pid_file:
        with open(OPTIONS.pid_file, "w") as f:
            f.write(str(os.getpid()))
    if OPTIONS.serve is not None:
        server = ThreadingHTTPServer(("127.0.0.1", OPTIONS.serve), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        return 0
    try:
        out = invoke(sys.stdin.buffer.read())
    except Exception:
        traceback.print_exc()
        return 3
    sys.stdout.write(out)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
