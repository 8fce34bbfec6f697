//! Judging what a skill posts to the event gateway (reference smarthome.md
//! §3 and §4: rules 1–3 on the header, 5–19 for reported endpoints, 21
//! scope, 23 DeleteReport, 24–29 ChangeReport, 30–31 async answers).
//! Any error makes the gateway refuse the whole event (400, naming the
//! first one); body size and the 300-endpoint cap (rule 22) are the
//! gateway's own, checked before this.

use super::answer::{deferral, error_response};
use super::interfaces::CAUSES;
use super::properties::{self, declaring};
use super::{Dropped, Finding, Mode, Report, Severity, anchor, endpoint, version_and_id};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

/// What the gateway needs to know beyond the message itself.
pub struct Context<'a> {
    /// The `Authorization` bearer token (rule 21: the scope must carry it).
    pub bearer: &'a str,
    /// The declaration of an endpoint Alexa knows for this user (rules 24, 26).
    pub known: &'a dyn Fn(&str) -> Option<Value>,
    /// Whether a directive with this correlationToken waits for its answer,
    /// and the endpoint it was sent to (rule 30): `Some(endpoint)` if it waits.
    pub pending: &'a dyn Fn(&str) -> Option<Option<String>>,
    /// When the gateway received the event (rule 29: a ChangeReport within
    /// 3 s of the change); `None` skips that check.
    pub received: Option<time::OffsetDateTime>,
    pub mode: Mode,
}

/// What kind of event it was, with what the registry needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum EventKind {
    AddOrUpdateReport {
        /// Endpoints without errors.
        endpoints: Vec<Value>,
        dropped: Vec<Dropped>,
    },
    DeleteReport {
        ids: Vec<String>,
    },
    ChangeReport {
        endpoint: String,
        /// `payload.change.properties` then `context.properties` (the
        /// well-formed ones).
        properties: Vec<Value>,
    },
    /// An asynchronous `Alexa` / `Response` (after a DeferredResponse).
    Response {
        endpoint: Option<String>,
        correlation: String,
        properties: Vec<Value>,
    },
    ErrorResponse {
        endpoint: Option<String>,
        correlation: String,
        error_type: String,
    },
    DeferredResponse {
        correlation: String,
    },
    /// Any other interface event (e.g. DoorbellPress).
    Other {
        namespace: String,
        name: String,
        endpoint: Option<String>,
    },
}

/// The verdict on one gateway event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    pub findings: Vec<Finding>,
}

impl Event {
    /// The first error, if Alexa would refuse the event.
    pub fn first_error(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.severity == super::Severity::Error)
    }
}

/// Judge a gateway event body.
pub fn event(body: &Value, ctx: &Context<'_>) -> Event {
    let mut r = Report::new(ctx.mode);
    let h = &body["event"]["header"];
    if h.is_object() {
        version_and_id(&mut r, h);
    } else {
        r.error(
            "/event/header".into(),
            "1 header",
            "event.header must be an object".into(),
        );
    }
    let ns = h["namespace"].as_str().unwrap_or("").to_string();
    let name = h["name"].as_str().unwrap_or("").to_string();
    let kind = match (ns.as_str(), name.as_str()) {
        ("Alexa.Discovery", "AddOrUpdateReport") => return add_or_update(r, body, ctx),
        ("Alexa.Discovery", "DeleteReport") => delete(&mut r, body, ctx),
        ("Alexa", "ChangeReport") => change(&mut r, body, ctx),
        ("Alexa", "Response") => response(&mut r, body, ctx),
        ("Alexa", "DeferredResponse") => {
            let correlation = correlation(&mut r, body, ctx);
            if body["event"].get("endpoint").is_some() {
                scope(
                    &mut r,
                    &body["event"]["endpoint"]["scope"],
                    "/event/endpoint/scope",
                    ctx,
                );
            }
            deferral(&mut r, body);
            EventKind::DeferredResponse { correlation }
        }
        (_, "ErrorResponse") => {
            let correlation = correlation(&mut r, body, ctx);
            scope(
                &mut r,
                &body["event"]["endpoint"]["scope"],
                "/event/endpoint/scope",
                ctx,
            );
            error_response(&mut r, body, false);
            EventKind::ErrorResponse {
                endpoint: endpoint_of(body),
                correlation,
                error_type: body["event"]["payload"]["type"].as_str().unwrap_or("").into(),
            }
        }
        _ => other(&mut r, body, ctx, ns, name),
    };
    finish(body, r, kind)
}

fn finish(body: &Value, mut r: Report, kind: EventKind) -> Event {
    anchor(body, &mut r.findings);
    Event {
        kind,
        findings: r.findings,
    }
}

fn endpoint_of(body: &Value) -> Option<String> {
    body["event"]["endpoint"]["endpointId"].as_str().map(str::to_string)
}

/// Rule 21: the scope names the customer with the token the request bears.
fn scope(r: &mut Report, s: &Value, at: &str, ctx: &Context<'_>) {
    let rule = "21 scope";
    if !s.is_object() {
        return r.error(at.into(), rule, "scope is required: {type, token}".into());
    }
    let partitioned = match s["type"].as_str() {
        Some("BearerToken") => false,
        Some("BearerTokenWithPartition") => true,
        _ => {
            return r.error(
                format!("{at}/type"),
                rule,
                format!(
                    "scope type must be BearerToken or BearerTokenWithPartition, got {}",
                    s["type"]
                ),
            );
        }
    };
    match s["token"].as_str() {
        None | Some("") => r.error(
            format!("{at}/token"),
            rule,
            "scope token must be a non-empty string".into(),
        ),
        Some(t) if t != ctx.bearer => r.error(
            format!("{at}/token"),
            rule,
            "scope token must be the same token as the Authorization header's".into(),
        ),
        Some(_) => {}
    }
    for key in ["partition", "userId"].into_iter().filter(|_| partitioned) {
        if !s[key].is_string() {
            r.error(
                format!("{at}/{key}"),
                rule,
                format!("BearerTokenWithPartition needs {key}, a string"),
            );
        }
    }
}

/// AddOrUpdateReport: scope, then every endpoint as in discovery (5–19).
fn add_or_update(mut r: Report, body: &Value, ctx: &Context<'_>) -> Event {
    scope(&mut r, &body["event"]["payload"]["scope"], "/event/payload/scope", ctx);
    let (verdict, endpoints) = super::endpoints(r, body, false);
    Event {
        kind: EventKind::AddOrUpdateReport {
            endpoints,
            dropped: verdict.dropped,
        },
        findings: verdict.findings,
    }
}

/// Rule 23: DeleteReport names endpoints by valid ids Alexa knows.
fn delete(r: &mut Report, body: &Value, ctx: &Context<'_>) -> EventKind {
    let rule = "23 DeleteReport endpoints";
    scope(r, &body["event"]["payload"]["scope"], "/event/payload/scope", ctx);
    let at = "/event/payload/endpoints";
    let list = body.pointer(at).and_then(Value::as_array);
    if list.is_none_or(|l| l.is_empty()) {
        r.error(
            at.into(),
            rule,
            "payload.endpoints must be a non-empty array of {endpointId}".into(),
        );
    }
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for (i, e) in list.into_iter().flatten().enumerate() {
        let here = format!("{at}/{i}/endpointId");
        let before = r.findings.len();
        endpoint::endpoint_id(r, &e["endpointId"], &here, &mut seen);
        let valid = r.findings[before..].iter().all(|f| f.severity != Severity::Error);
        let Some(id) = e["endpointId"].as_str().filter(|_| valid) else {
            continue;
        };
        if (ctx.known)(id).is_none() {
            r.warn(
                here,
                rule,
                format!("endpoint {id:?} is not one Alexa knows for this user"),
            );
        }
        ids.push(id.to_string());
    }
    EventKind::DeleteReport { ids }
}

/// Rule 24: the event names an endpoint Alexa knows, with rule 21's scope;
/// returns its id and declaration.
fn known_endpoint(r: &mut Report, body: &Value, ctx: &Context<'_>) -> (Option<String>, Option<Value>) {
    let rule = "24 endpoint";
    scope(r, &body["event"]["endpoint"]["scope"], "/event/endpoint/scope", ctx);
    let at = "/event/endpoint/endpointId";
    let Some(id) = endpoint_of(body) else {
        r.error(at.into(), rule, "event.endpoint.endpointId is required".into());
        return (None, None);
    };
    let decl = (ctx.known)(&id);
    if decl.is_none() {
        r.error(
            at.into(),
            rule,
            format!("endpoint {id:?} is not one Alexa knows for this user (never discovered, dropped from discovery, or deleted)"),
        );
    }
    (Some(id), decl)
}

/// Rules 24–29: a ChangeReport.
fn change(r: &mut Report, body: &Value, ctx: &Context<'_>) -> EventKind {
    let (id, decl) = known_endpoint(r, body, ctx);
    let cause = "/event/payload/change/cause/type";
    if !body
        .pointer(cause)
        .and_then(Value::as_str)
        .is_some_and(|c| CAUSES.contains(&c))
    {
        r.warn(
            cause.into(),
            "25 cause",
            format!("change.cause.type should be one of {}", CAUSES.join(", ")),
        );
    }
    let at = "/event/payload/change/properties";
    let mut props = properties::list(r, body.pointer(at), at, true);
    if let Some(decl) = &decl {
        proactive(r, decl, body.pointer(at), at);
    }
    if let Some(received) = ctx.received {
        late(r, &props, received, at);
    }
    props.extend(context(r, body, decl.as_ref()));
    let health = |p: &Value| p["namespace"] == "Alexa.EndpointHealth" && p["name"] == "connectivity";
    if !props.iter().any(health) {
        r.advise(
            "/context/properties".into(),
            "29 connectivity",
            "a ChangeReport should include Alexa.EndpointHealth connectivity".into(),
        );
    }
    EventKind::ChangeReport {
        endpoint: id.unwrap_or_default(),
        properties: props,
    }
}

/// Rule 29: the documentation asks for a ChangeReport within 3 s of the
/// change; a changed property sampled longer before arrival is advised on.
fn late(r: &mut Report, changed: &[Value], received: time::OffsetDateTime, at: &str) {
    use time::format_description::well_known::Rfc3339;
    for (i, p) in changed.iter().enumerate() {
        let Some(sampled) = p["timeOfSample"]
            .as_str()
            .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
        else {
            continue;
        };
        let age = received - sampled;
        if age > time::Duration::seconds(3) {
            r.advise(
                format!("{at}/{i}/timeOfSample"),
                "29 within 3 s",
                format!(
                    "the change was sampled {:.1} s before the ChangeReport arrived; send it within 3 s",
                    age.as_seconds_f64()
                ),
            );
        }
    }
}

/// Rule 26: a changed property must be declared `proactivelyReported: true`.
fn proactive(r: &mut Report, decl: &Value, props: Option<&Value>, at: &str) {
    for (i, p) in props.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let reported = declaring(decl, p).is_some_and(|c| c["properties"]["proactivelyReported"] == true);
        if p.is_object() && !reported {
            r.error(
                format!("{at}/{i}"),
                "26 proactivelyReported",
                format!(
                    "{}.{} is not declared proactivelyReported: true by the endpoint",
                    p["namespace"].as_str().unwrap_or("?"),
                    p["name"].as_str().unwrap_or("?")
                ),
            );
        }
    }
}

/// `context.properties` (26–28), undeclared ones warned about.
fn context(r: &mut Report, body: &Value, decl: Option<&Value>) -> Vec<Value> {
    let at = "/context/properties";
    if let Some(decl) = decl {
        properties::declared(r, decl, body.pointer(at), at);
    }
    properties::list(r, body.pointer(at), at, false)
}

/// Rule 30: an async answer carries a correlationToken a directive awaits.
fn correlation(r: &mut Report, body: &Value, ctx: &Context<'_>) -> String {
    let at = "/event/header/correlationToken";
    let rule = "30 correlationToken";
    let token = body.pointer(at).and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        r.error(
            at.into(),
            rule,
            "an asynchronous answer carries the directive's correlationToken".into(),
        );
    } else {
        match (ctx.pending)(token) {
            None => r.error(
                at.into(),
                rule,
                format!("no directive awaits this correlationToken ({token:?})"),
            ),
            Some(Some(sent_to)) => {
                let named = body.pointer("/event/endpoint/endpointId").and_then(Value::as_str);
                if named.is_some_and(|e| e != sent_to) {
                    r.error(
                        "/event/endpoint/endpointId".into(),
                        "30 endpointId",
                        format!(
                            "the directive with this correlationToken went to endpoint {sent_to:?}, not {:?}",
                            named.unwrap_or_default()
                        ),
                    );
                }
            }
            Some(None) => {}
        }
    }
    token.to_string()
}

/// An asynchronous Response: correlation, scope, context properties.
fn response(r: &mut Report, body: &Value, ctx: &Context<'_>) -> EventKind {
    let correlation = correlation(r, body, ctx);
    scope(r, &body["event"]["endpoint"]["scope"], "/event/endpoint/scope", ctx);
    let endpoint = endpoint_of(body);
    let decl = endpoint.as_deref().and_then(|id| (ctx.known)(id));
    let properties = context(r, body, decl.as_ref());
    EventKind::Response {
        endpoint,
        correlation,
        properties,
    }
}

/// Any other interface event: header, scope, a known endpoint.
fn other(r: &mut Report, body: &Value, ctx: &Context<'_>, namespace: String, name: String) -> EventKind {
    if namespace.is_empty() || name.is_empty() {
        r.error(
            "/event/header".into(),
            "1 header",
            "event.header needs a namespace and a name".into(),
        );
    }
    let (endpoint, decl) = known_endpoint(r, body, ctx);
    context(r, body, decl.as_ref());
    EventKind::Other {
        namespace,
        name,
        endpoint,
    }
}
