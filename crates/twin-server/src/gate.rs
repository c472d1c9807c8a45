//! The gate: one tower layer in front of every service the server hosts, the ONE place
//! where roles are enforced, calls are audited and RPC metrics are taken.
//!
//! For each request, by its path:
//! 1. Health and reflection ([`auth::OPEN_PATHS`]) pass untouched (metrics only).
//! 2. Anything else needs a caller: the bearer token is checked (UNAUTHENTICATED if
//!    missing or bad), then the role table ([`auth::RPCS`]): a method missing from the
//!    table, or a role below the row's, is PERMISSION_DENIED. Rejections are audited.
//! 3. The caller goes into the request's extensions ([`auth::Caller`], for WhoAmI).
//! 4. For RPCs that change something, the request body is read (bounded) to render it
//!    for the audit log, then handed on unchanged; after the handler answers, the entry
//!    with the result is written durably before the response leaves.
//! 5. Every answer is counted by method and status code, with its latency.
//!
//! Refused calls are recorded one by one up to [`MAX_RECORDED_REJECTIONS_PER_S`] per
//! second; beyond that they are summed up in one entry (method `*`), so that a flood of
//! bad tokens can neither flush the real entries out of the log (retention) nor turn
//! every refused call into a disk write. The RPC metrics still count every one.
//!
//! Status codes come from the response head: handlers that fail answer "trailers only",
//! with `grpc-status` in the head; a head without one is a call that succeeded (for a
//! server stream: that started).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tokio::sync::watch;
use tonic::body::Body;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::audit::{AuditLog, Entry, now_unix_ms};
use crate::auth::{self, Audit, Authenticator, Caller, Role};
use crate::metrics;
use crate::sim::Snapshot;

/// Largest request body read for the audit log (tonic's default message limit plus the
/// gRPC frame header); larger requests to audited RPCs are RESOURCE_EXHAUSTED.
pub const MAX_AUDITED_REQUEST_BYTES: usize = 4 * 1024 * 1024 + 5;

/// Most refused calls recorded one by one per second (see the module docs).
pub const MAX_RECORDED_REJECTIONS_PER_S: u32 = 20;

/// Refused calls recorded in the current one-second window, and those left out.
struct RejectionBudget {
    window: Instant,
    recorded: u32,
    omitted: u64,
}

/// What the gate needs, shared by every connection.
pub(crate) struct GateState {
    /// None: no authentication (every caller is anonymous with ADMIN).
    pub auth: Option<Authenticator>,
    /// None: no audit log.
    pub audit: Option<Arc<AuditLog>>,
    /// Whether to record RPC metrics.
    pub metrics: bool,
    /// The live snapshot, for the simulated time of audit entries.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Rate limit of refused calls in the audit log.
    rejections: Mutex<RejectionBudget>,
}

impl GateState {
    pub(crate) fn new(
        auth: Option<Authenticator>,
        audit: Option<Arc<AuditLog>>,
        metrics: bool,
        snapshots: watch::Receiver<Arc<Snapshot>>,
    ) -> GateState {
        let budget = RejectionBudget { window: Instant::now(), recorded: 0, omitted: 0 };
        GateState { auth, audit, metrics, snapshots, rejections: Mutex::new(budget) }
    }

    /// Whether to record this refused call, and how many earlier ones were left out and
    /// still need their summary entry.
    fn admit_rejection(&self) -> (bool, u64) {
        let Ok(mut budget) = self.rejections.lock() else { return (true, 0) };
        let now = Instant::now();
        let mut summarize = 0;
        if now.duration_since(budget.window) >= Duration::from_secs(1) {
            summarize = std::mem::take(&mut budget.omitted);
            budget.window = now;
            budget.recorded = 0;
        }
        if budget.recorded < MAX_RECORDED_REJECTIONS_PER_S {
            budget.recorded += 1;
            (true, summarize)
        } else {
            budget.omitted += 1;
            (false, summarize)
        }
    }
}

/// The tower layer (`Server::builder().layer(GateLayer)`).
#[derive(Clone)]
pub struct GateLayer {
    state: Arc<GateState>,
}

impl GateLayer {
    pub(crate) fn new(state: GateState) -> GateLayer {
        GateLayer { state: Arc::new(state) }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate { inner, state: Arc::clone(&self.state) }
    }
}

/// The service the layer wraps around the router.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    state: Arc<GateState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for Gate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = Arc::clone(&self.state);
        Box::pin(async move { Ok(state.pass(inner, request).await) })
    }
}

/// Canonical name of a status code, as in metrics labels and the audit log.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The caller's address from tonic's connection info (plain TCP or TLS).
fn peer_of(request: &http::Request<Body>) -> Option<SocketAddr> {
    let ext = request.extensions();
    ext.get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr).or_else(|| {
        ext.get::<tonic::transport::server::TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.get_ref().remote_addr())
    })
}

/// The message of a unary gRPC request body: one frame, `[flag][len: u32 BE][message]`.
fn unframe(body: &[u8]) -> Result<&[u8], &'static str> {
    let (header, rest) = body.split_at_checked(5).ok_or("<empty request>")?;
    if header[0] != 0 {
        return Err("<compressed request>");
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    rest.get(..len).ok_or("<truncated request>")
}

/// What the audit entry of a call says about its request.
struct Pending {
    method: String,
    subject: String,
    role: Option<Role>,
    request: String,
    peer: String,
}

impl GateState {
    async fn pass<S>(self: Arc<Self>, mut inner: S, mut request: http::Request<Body>) -> http::Response<Body>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        if auth::is_open(&path) {
            let response = match inner.call(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let label = auth::OPEN_PATHS.iter().find(|p| **p == path).map_or("unknown", |p| &p[1..]);
            self.observe(label, &response, started);
            return response;
        }
        let row = auth::lookup(&path);
        let label = row.map_or("unknown", |r| r.name);
        let method = row.map_or_else(|| auth::truncate(path.clone()), |r| r.name.to_owned());
        let peer = peer_of(&request).map_or_else(String::new, |a| a.to_string());

        // Who is calling, and may they?
        let caller = match &self.auth {
            None => Caller::anonymous(),
            Some(authenticator) => match authenticator.authenticate(request.headers()) {
                Ok(caller) => caller,
                Err(status) => {
                    let pending =
                        Pending { method, subject: "-".into(), role: None, request: "-".into(), peer };
                    return self.reject(label, status, pending, started).await;
                }
            },
        };
        let row = match auth::authorize(&caller, &path) {
            Ok(row) => row,
            Err(status) => {
                let pending = Pending {
                    method,
                    subject: caller.subject.clone(),
                    role: Some(caller.role),
                    request: "-".into(),
                    peer,
                };
                return self.reject(label, status, pending, started).await;
            }
        };
        let mut pending = Pending {
            method,
            subject: caller.subject.clone(),
            role: caller.authenticated.then_some(caller.role),
            request: "-".into(),
            peer,
        };
        request.extensions_mut().insert(caller);

        // Changing calls: read the request to record it, then hand it on as it was.
        let audited = match (row.audit, &self.audit) {
            (Audit::EveryCall(render), Some(_)) => {
                let (parts, body) = request.into_parts();
                let bytes = match Limited::new(body, MAX_AUDITED_REQUEST_BYTES).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) => {
                        let status = if e.downcast_ref::<LengthLimitError>().is_some() {
                            Status::resource_exhausted(format!(
                                "request larger than {MAX_AUDITED_REQUEST_BYTES} bytes"
                            ))
                        } else {
                            Status::cancelled(format!("reading the request failed: {e}"))
                        };
                        return self.reject(label, status, pending, started).await;
                    }
                };
                pending.request = match unframe(&bytes) {
                    Ok(message) => render(message),
                    Err(what) => what.to_owned(),
                };
                request = http::Request::from_parts(parts, Body::new(Full::<Bytes>::new(bytes)));
                true
            }
            (Audit::StreamOpened, Some(_)) => {
                pending.request = "<request stream, recorded in the telemetry log>".into();
                true
            }
            _ => false,
        };

        let response = match inner.call(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        if audited {
            let status = Status::from_header_map(response.headers());
            self.record(pending, status.as_ref()).await;
        }
        self.observe(label, &response, started);
        response
    }

    /// Answers a rejected call: audits it, counts it, and returns the status.
    async fn reject(
        &self,
        label: &'static str,
        status: Status,
        pending: Pending,
        started: Instant,
    ) -> http::Response<Body> {
        tracing::info!(
            method = %pending.method,
            subject = %pending.subject,
            peer = %pending.peer,
            code = code_name(status.code()),
            message = status.message(),
            "call rejected"
        );
        let (record, omitted) = self.admit_rejection();
        if omitted > 0 {
            let summary = Pending {
                method: "*".into(),
                subject: "-".into(),
                role: None,
                request: "-".into(),
                peer: String::new(),
            };
            let status = Status::resource_exhausted(format!(
                "{omitted} more refused calls were not recorded one by one (at most \
                 {MAX_RECORDED_REJECTIONS_PER_S} per second); twin_rpc_requests_total counts them all"
            ));
            self.record(summary, Some(&status)).await;
        }
        if record {
            self.record(pending, Some(&status)).await;
        }
        if self.metrics {
            metrics::rpc(label, code_name(status.code()), started.elapsed());
        }
        status.into_http()
    }

    /// Counts an answered call.
    fn observe(&self, label: &'static str, response: &http::Response<Body>, started: Instant) {
        if self.metrics {
            let code = Status::from_header_map(response.headers()).map_or(Code::Ok, |s| s.code());
            metrics::rpc(label, code_name(code), started.elapsed());
        }
    }

    /// Writes the audit entry of a finished call (`status` None: OK) and waits until it
    /// is on disk. A failed write is logged and counted; the call's answer stands.
    async fn record(&self, pending: Pending, status: Option<&Status>) {
        let Some(log) = &self.audit else { return };
        let (code, message) = match status {
            Some(s) if s.code() != Code::Ok => (code_name(s.code()), auth::truncate(s.message().to_owned())),
            _ => ("OK", String::new()),
        };
        let entry = Entry {
            seq: 0,
            wall_time_unix_ms: now_unix_ms(),
            sim_time_us: self.snapshots.borrow().clock.sim_time,
            subject: pending.subject,
            role: pending.role,
            method: pending.method,
            request: pending.request,
            code: code.to_owned(),
            message,
            peer: pending.peer,
        };
        let log = Arc::clone(log);
        let written = tokio::task::spawn_blocking(move || log.append(&entry)).await;
        let error = match written {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("audit task failed: {e}"),
        };
        tracing::error!(error = %error, "audit entry not written");
        if self.metrics {
            metrics::audit_write_error();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_unwrap_or_say_why_not() {
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 8, 1]), Ok(&[8u8, 1][..]));
        assert_eq!(unframe(&[0, 0, 0, 0, 0]), Ok(&[][..]));
        assert!(unframe(&[0, 0]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 1, 0]).is_err());
        assert!(unframe(&[0, 0, 0, 0, 9, 1]).is_err());
    }
}
