//! The embedded DBSS API simulator, used by `demo` and by the tests.
//!
//! It answers `GET /v1/{project_id}/audit/upgrade/status` the way the API
//! page and the SDK describe: it checks `X-Auth-Token` or the AK/SK signature
//! as [`auth`] says (401 with a documented error body otherwise), answers 404 for a
//! project it does not know, and serves each project's instances. A test can
//! script what a project answers next ([`Reply`]) and read back every
//! request it received ([`Simulator::requests`]). It also serves IAM tokens
//! and the metadata service's temporary keys, so that one simulator URL can
//! be every endpoint of a configuration; [`faults`] makes answers misbehave
//! on the wire.

pub mod auth;
pub mod faults;
pub mod fleet;
pub mod tls;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use faults::{Fault, FaultMix};
pub use fleet::Fleet;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Extra response headers (Retry-After, ...).
    pub headers: Vec<(String, String)>,
    /// The body, sent as it is.
    pub body: Bytes,
    /// How long to wait before sending the headers.
    pub delay: Duration,
    /// How the answer misbehaves on the wire.
    pub fault: Fault,
}

impl Reply {
    /// A JSON answer with `status`.
    pub fn json(status: u16, body: &Value) -> Self {
        Reply::raw(status, body.to_string())
    }

    /// An answer with any body.
    pub fn raw(status: u16, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            fault: Fault::None,
        }
    }

    /// The same answer with a header added.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same answer sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// When it arrived.
    pub at: Instant,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The project id of an upgrade-status call.
    pub project_id: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The status it was answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a project answers when nothing is scripted.
#[derive(Debug, Clone)]
enum Source {
    /// A fixed list of instances.
    Instances(Vec<Value>),
    /// A fixed answer.
    Reply(Reply),
    /// Instances of the demo fleet, which move with time.
    Fleet(usize),
}

#[derive(Debug)]
struct Project {
    source: Source,
    script: VecDeque<Reply>,
}

#[derive(Default)]
struct Inner {
    tokens: HashSet<String>,
    projects: HashMap<String, Project>,
    requests: VecDeque<RecordedRequest>,
    record_limit: usize,
    latency: Duration,
    auth: auth::AuthState,
    fault_mix: Option<FaultMix>,
}

struct State {
    inner: Mutex<Inner>,
    fleet: Mutex<Option<Fleet>>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator on a loopback port; it stops when dropped.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
    cancel: CancellationToken,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1`, on a free port.
    pub async fn start() -> std::io::Result<Simulator> {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts a simulator on `addr`.
    pub async fn start_on(addr: &str) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let sim = Simulator::unstarted(listener.local_addr()?);
        tokio::spawn(accept_loop(listener, sim.state.clone(), sim.cancel.clone()));
        Ok(sim)
    }

    /// A simulator with no requests and no projects yet, not accepting.
    fn unstarted(addr: SocketAddr) -> Simulator {
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                record_limit: 100_000,
                ..Inner::default()
            }),
            fleet: Mutex::new(None),
        });
        Simulator {
            addr,
            state,
            cancel: CancellationToken::new(),
        }
    }

    /// The base URL, to use as a target's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepts `token` in `X-Auth-Token`.
    pub fn add_token(&self, token: &str) {
        self.state.lock().tokens.insert(token.to_string());
    }

    /// Makes `project_id` known, answering 200 with these instances.
    pub fn set_instances(&self, project_id: &str, instances: Vec<Value>) {
        self.set_source(project_id, Source::Instances(instances));
    }

    /// Makes `project_id` answer `reply` whenever nothing is scripted.
    pub fn set_reply(&self, project_id: &str, reply: Reply) {
        self.set_source(project_id, Source::Reply(reply));
    }

    /// Delays every upgrade-status answer by `latency`, as a distant API would.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Forgets `project_id`: it answers 404 from now on.
    pub fn remove_project(&self, project_id: &str) {
        self.state.lock().projects.remove(project_id);
    }

    fn set_source(&self, project_id: &str, source: Source) {
        let mut inner = self.state.lock();
        let p = inner
            .projects
            .entry(project_id.to_string())
            .or_insert_with(|| Project {
                source: source.clone(),
                script: VecDeque::new(),
            });
        p.source = source;
    }

    /// Queues answers that `project_id` gives, in order, before its usual one.
    pub fn script(&self, project_id: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut inner = self.state.lock();
        if let Some(p) = inner.projects.get_mut(project_id) {
            p.script.extend(replies);
        }
    }

    /// Serves the demo `fleet`: each of its projects becomes known.
    pub fn set_fleet(&self, fleet: Fleet) {
        let mut inner = self.state.lock();
        for (i, p) in fleet.projects().iter().enumerate() {
            inner.projects.insert(
                p.project_id.clone(),
                Project {
                    source: Source::Fleet(i),
                    script: VecDeque::new(),
                },
            );
        }
        // A demo runs for days; keep only the latest requests.
        inner.record_limit = 1_000;
        drop(inner);
        *self.state.fleet.lock().unwrap_or_else(|e| e.into_inner()) = Some(fleet);
    }

    /// Every request received so far (up to the most recent 100,000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// How many upgrade-status requests `project_id` received.
    pub fn request_count(&self, project_id: &str) -> usize {
        let inner = self.state.lock();
        inner
            .requests
            .iter()
            .filter(|r| r.project_id.as_deref() == Some(project_id))
            .count()
    }
}

/// An instance as the API spells it, for tests and the fleet.
pub fn instance_json(
    instance_id: &str,
    current_version: &str,
    status: i64,
    upgrade_version: Option<&str>,
    total: i64,
) -> Value {
    let mut v = json!({
        "instance_id": instance_id,
        "current_version": current_version,
        "status": status,
        "total": total,
    });
    if let Some(u) = upgrade_version {
        v["upgrade_version"] = json!(u);
    }
    v
}

/// The flat error body of the upgrade-status page.
pub fn error_body(code: &str, msg: &str) -> Value {
    json!({ "error_code": code, "error_msg": msg })
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        tokio::spawn(serve_io(stream, state.clone(), cancel.clone()));
    }
}

/// Serves HTTP/1.1 on one connection, plain or already wrapped in TLS.
async fn serve_io<I>(io: I, state: Arc<State>, cancel: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { handle(state, req).await }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = cancel.cancelled() => {}
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<faults::SimBody>, faults::Dropped> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = parts.uri.path().to_string();
    let project_id = upgrade_status_project(&path);

    let received = auth::Received {
        method: parts.method.as_str(),
        path: &path,
        query: parts.uri.query(),
        headers: &headers,
        body: &body,
    };
    let reply = match (&parts.method, &project_id) {
        (&http::Method::GET, Some(id)) => answer_upgrade_status(&state, id, &received),
        _ => auth::answer(&mut state.lock(), &received).unwrap_or_else(|| Reply::json(
            404,
            &json!({"error_code": "APIGW.0101", "error_msg": "The API does not exist or has not been published in the environment"}),
        )),
    };
    let latency = state.lock().latency;
    record(&state, &parts, headers, project_id, reply.status);
    let delay = reply.delay + latency;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    to_response(reply)
}

fn record(
    state: &State,
    parts: &http::request::Parts,
    headers: Vec<(String, String)>,
    project_id: Option<String>,
    status: u16,
) {
    let mut inner = state.lock();
    if inner.requests.len() >= inner.record_limit {
        inner.requests.pop_front();
    }
    inner.requests.push_back(RecordedRequest {
        at: Instant::now(),
        method: parts.method.to_string(),
        path: parts.uri.to_string(),
        project_id,
        headers,
        status,
    });
}

/// The project id of `/v1/{project_id}/audit/upgrade/status`.
fn upgrade_status_project(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/")?;
    let id = rest.strip_suffix("/audit/upgrade/status")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

fn answer_upgrade_status(state: &State, project_id: &str, req: &auth::Received) -> Reply {
    let mut inner = state.lock();
    if let Err(refusal) = auth::check(&mut inner, project_id, req) {
        return refusal;
    }
    let Some(project) = inner.projects.get_mut(project_id) else {
        return Reply::json(
            404,
            &error_body("DBSS.10021004", "The project does not exist"),
        );
    };
    if let Some(reply) = project.script.pop_front() {
        return reply;
    }
    let source = project.source.clone();
    let mix = inner.fault_mix;
    drop(inner);
    let reply = match source {
        Source::Reply(r) => r,
        Source::Instances(list) => Reply::json(200, &json!({ "audit_upgrade_infos": list })),
        Source::Fleet(i) => {
            let fleet = state.fleet.lock().unwrap_or_else(|e| e.into_inner());
            let list = fleet
                .as_ref()
                .map(|f| f.instances_now(i))
                .unwrap_or_default();
            Reply::json(200, &json!({ "audit_upgrade_infos": list }))
        }
    };
    match mix {
        Some(mix) => mix.disturb(reply),
        None => reply,
    }
}

fn to_response(reply: Reply) -> Result<Response<faults::SimBody>, faults::Dropped> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json;charset=UTF-8");
    for (n, v) in &reply.headers {
        builder = builder.header(n, v);
    }
    faults::respond(builder, reply)
}
