//! The HTTP endpoints: the metrics page, health, readiness and a landing page.
//!
//! A scrape reads the latest [`Page`](crate::snapshot::Page) and appends the
//! self-metrics; it never calls the cloud and never waits for a poll.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::selfmetrics::SelfMetrics;
use crate::snapshot::Snapshot;
use crate::web::WebState;

/// The Content-Type of the text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the endpoints read.
pub struct Endpoints {
    /// The published series.
    pub snapshot: Arc<Snapshot>,
    /// The exporter's own metrics.
    pub metrics: Arc<SelfMetrics>,
    /// Where the metrics page is served, `/metrics` by default.
    pub telemetry_path: String,
    /// Where `POST /-/reload` sends its request; `None` when lifecycle
    /// endpoints are off.
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
}

/// A reload request, with where to send the outcome (none for SIGHUP).
pub type ReloadRequest = Option<oneshot::Sender<Result<(), String>>>;

/// A response body made of a few shared buffers, sent without copying.
pub struct Parts {
    parts: std::collections::VecDeque<Bytes>,
}

impl Parts {
    /// A body of the given buffers, in order.
    pub fn new(parts: impl IntoIterator<Item = Bytes>) -> Self {
        Parts {
            parts: parts.into_iter().filter(|b| !b.is_empty()).collect(),
        }
    }

    fn text(s: impl Into<String>) -> Self {
        Parts::new([Bytes::from(s.into())])
    }
}

impl Body for Parts {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.parts.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.parts.iter().map(|b| b.len() as u64).sum())
    }
}

impl Endpoints {
    /// Answers one request.
    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Parts> {
        let path = req.uri().path();
        if path == "/-/reload" {
            return self.reload(req.method()).await;
        }
        let known = path == self.telemetry_path || matches!(path, "/-/healthy" | "/-/ready" | "/");
        if !known {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return not_allowed("GET, HEAD", "method not allowed\n");
        }
        if path == self.telemetry_path {
            return self.metrics_page(req);
        }
        match path {
            "/-/healthy" => plain(StatusCode::OK, "Healthy\n"),
            "/-/ready" => self.ready(),
            _ => self.landing(),
        }
    }

    fn metrics_page<B>(&self, req: &Request<B>) -> Response<Parts> {
        let page = self.snapshot.page();
        // A HEAD request is answered with the same headers but is not a
        // scrape: it must not move the scrape counter.
        let tail = if req.method() == Method::HEAD {
            self.metrics.render()
        } else {
            self.metrics.render_scrape()
        };
        let builder = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, CONTENT_TYPE_TEXT)
            .header(header::VARY, "Accept-Encoding");
        let response = if accepts_gzip(req.headers()) {
            builder
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Parts::new(page.gzip_with(&tail)))
        } else {
            builder.body(Parts::new([page.plain.clone(), Bytes::from(tail)]))
        };
        response.expect("static headers are valid")
    }

    async fn reload(&self, method: &Method) -> Response<Parts> {
        let Some(tx) = &self.reload else {
            return plain(
                StatusCode::FORBIDDEN,
                "lifecycle endpoints are disabled; start with --web.enable-lifecycle\n",
            );
        };
        if method != Method::POST && method != Method::PUT {
            return not_allowed("POST, PUT", "use POST to reload\n");
        }
        let (reply, outcome) = oneshot::channel();
        if tx.send(Some(reply)).await.is_err() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        }
        match outcome.await {
            Ok(Ok(())) => plain(StatusCode::OK, "configuration reloaded\n"),
            Ok(Err(e)) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            ),
            Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        }
    }

    fn ready(&self) -> Response<Parts> {
        // Readiness is read off the published page, so that a ready
        // exporter's page already holds every target's first answer.
        let (expected, polled) = self.snapshot.page().readiness;
        if expected > 0 && polled >= expected {
            plain(StatusCode::OK, "Ready\n")
        } else {
            let msg = format!("Not ready: {polled} of {expected} targets polled once\n");
            plain(StatusCode::SERVICE_UNAVAILABLE, msg)
        }
    }

    fn landing(&self) -> Response<Parts> {
        let path = html_escape(&self.telemetry_path);
        let html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>DBSS Exporter</title></head>\n<body><h1>DBSS Exporter</h1>\n<p>Upgrade status of Huawei Cloud DBSS audit instances, version {}.</p>\n<ul>\n<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n</ul>\n</body></html>\n",
            crate::selfmetrics::VERSION
        );
        Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Parts::text(html))
            .expect("static headers are valid")
    }
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response<Parts> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Parts::text(text))
        .expect("static headers are valid")
}

/// 405 with the `Allow` header that RFC 9110 asks of it.
fn not_allowed(allow: &'static str, text: &'static str) -> Response<Parts> {
    let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, text);
    r.headers_mut()
        .insert(header::ALLOW, http::HeaderValue::from_static(allow));
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `Accept-Encoding` allows gzip (a `q=0` refuses it).
pub fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

/// Binds `addr`; `:PORT` means every interface, as in the Go exporters.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    if let Some(port) = addr.strip_prefix(':') {
        let any6 = format!("[::]:{port}");
        return match TcpListener::bind(&any6).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(format!("0.0.0.0:{port}")).await,
        };
    }
    TcpListener::bind(addr).await
}

/// Serves `endpoints` on `listener` until `cancel` fires; connections in
/// progress are closed gracefully.
pub async fn serve(listener: TcpListener, endpoints: Arc<Endpoints>, cancel: CancellationToken) {
    serve_with(listener, endpoints, None, cancel).await
}

/// [`serve`] under a web configuration (TLS, basic auth, headers), when one
/// is given.
pub async fn serve_with(
    listener: TcpListener,
    endpoints: Arc<Endpoints>,
    web: Option<Arc<WebState>>,
    cancel: CancellationToken,
) {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            peer,
            endpoints: endpoints.clone(),
            web: web.clone(),
            cancel: cancel.clone(),
        };
        connections.spawn(conn.run(stream));
    }
    connections.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connections.wait()).await;
}

/// Runs [`serve_with`] on a runtime of its own, on threads of its own, so
/// that scrapes are answered at once even while a poll cycle keeps the
/// poller's runtime busy. The receiver completes when serving has ended.
pub fn spawn_dedicated(
    listener: TcpListener,
    endpoints: Arc<Endpoints>,
    web: Option<Arc<WebState>>,
    cancel: CancellationToken,
) -> std::io::Result<oneshot::Receiver<()>> {
    let listener = listener.into_std()?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("dbss-http")
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name("dbss-http-main".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => serve_with(l, endpoints, web, cancel).await,
                    Err(e) => tracing::error!(error = %e, "cannot serve HTTP"),
                }
            });
            // Connections still open after the graceful period are dropped.
            runtime.shutdown_background();
            let _ = done.send(());
        })?;
    Ok(finished)
}

/// Answers a plain HTTP request on the TLS port with 400 and closes.
async fn refuse_plain_http(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 48\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
    let _ = stream.write_all(ANSWER).await;
    let _ = stream.shutdown().await;
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    endpoints: Arc<Endpoints>,
    web: Option<Arc<WebState>>,
    cancel: CancellationToken,
}

impl Connection {
    /// Serves plain HTTP, or HTTPS when the web configuration in force says so.
    async fn run(self, stream: tokio::net::TcpStream) {
        let acceptor = self.web.as_ref().and_then(|w| w.current().tls.clone());
        let Some(acceptor) = acceptor else {
            return self.serve(stream).await;
        };
        let handshake = async {
            // Every TLS connection opens with a handshake record (0x16); a
            // client speaking plain HTTP to this port gets a 400 it can
            // read, as the exporter toolkit answers, not bytes it cannot.
            let mut first = [0u8; 1];
            if stream.peek(&mut first).await? == 1 && first[0] != 0x16 {
                return Ok(Err(stream));
            }
            acceptor.accept(stream).await.map(Ok)
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await {
            Ok(Ok(Ok(tls))) => self.serve(tls).await,
            Ok(Ok(Err(plain))) => refuse_plain_http(plain).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (endpoints, web) = (self.endpoints, self.web);
        let service = service_fn(move |req: Request<Incoming>| {
            let (endpoints, web) = (endpoints.clone(), web.clone());
            async move {
                let response = match &web {
                    Some(web) => crate::web::guard::respond(web, &endpoints, &req).await,
                    None => endpoints.handle(&req).await,
                };
                Ok::<_, Infallible>(response)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30))
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = self.cancel.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn gzip_negotiation_follows_accept_encoding() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&http::HeaderMap::new()));
    }
}
