//! What the web configuration does to each request: the rate limit, basic
//! authentication (401 with `WWW-Authenticate: Basic`) and the extra
//! response headers, around [`Endpoints::handle`].

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};

use super::WebState;
use crate::server::{Endpoints, Parts};

/// Answers `req` through the web configuration in force.
pub async fn respond<B>(
    web: &WebState,
    endpoints: &Endpoints,
    req: &Request<B>,
) -> Response<Parts> {
    let config = web.current();
    let mut response = if config.limiter.as_ref().is_some_and(|l| !l.allow()) {
        refuse(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
    } else {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if web.authorized(&config, authorization).await {
            endpoints.handle(req).await
        } else {
            let mut r = refuse(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"dbss-exporter\""),
            );
            r
        }
    };
    for (name, value) in &config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn refuse(status: StatusCode, text: &'static str) -> Response<Parts> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Parts::new([Bytes::from_static(text.as_bytes())]))
        .expect("static headers are valid")
}
