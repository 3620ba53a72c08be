//! Request signing with `SDK-HMAC-SHA256`, the AK/SK scheme of Huawei Cloud.
//!
//! [`sign`] produces the `Authorization` header a client sends. [`parse_authorization`]
//! and [`verify`] check a received request the way the cloud does, for the API
//! simulator. The canonical form must match the official SDK byte for byte: the
//! fixture `tests/fixtures/sdk-hmac-sha256.json` holds requests that SDK signed, and
//! the tests at the bottom reproduce every one of them.
//!
//! The secret key, the signature and the security token never reach `Debug` output
//! or an error message.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Name of the signing algorithm, as it opens the string to sign and the
/// `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Header that carries the signing time.
const SDK_DATE_HEADER: &str = "x-sdk-date";

/// `chrono` layout of `X-Sdk-Date`, e.g. `20250209T154442Z`.
const SDK_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Header whose value is a credential and is hidden from `Debug` output.
const SECURITY_TOKEN_HEADER: &str = "x-security-token";

/// Placeholder printed in place of a secret.
const REDACTED: &str = "<redacted>";

type HmacSha256 = Hmac<Sha256>;

/// Why a request could not be signed, or why a signed request was refused.
///
/// No message ever carries the secret key or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The request has no `X-Sdk-Date` header.
    #[error("request has no x-sdk-date header")]
    MissingDate,

    /// The `X-Sdk-Date` value is not of the form `YYYYMMDDTHHMMSSZ`.
    #[error("x-sdk-date {0:?} is not of the form YYYYMMDDTHHMMSSZ")]
    BadDate(String),

    /// The `Authorization` header lacks a part, repeats one, or has one it should not.
    #[error("authorization header is malformed")]
    MalformedAuthorization,

    /// The `Authorization` header names an algorithm other than [`ALGORITHM`].
    #[error("authorization header does not use the sdk-hmac-sha256 algorithm")]
    WrongAlgorithm,

    /// A header listed in `SignedHeaders` is absent from the request.
    #[error("signed header {0:?} is missing from the request")]
    MissingSignedHeader(String),

    /// The signature does not match the one recomputed from the request.
    #[error("signature does not match the request")]
    SignatureMismatch,

    /// The secret key could not key the HMAC (HMAC takes keys of any length, so
    /// this is not expected in practice).
    #[error("secret key was rejected by the hmac")]
    InvalidKey,
}

/// The parts of an HTTP request that the signature covers.
///
/// `headers` excludes `Host`: the host is taken from `host` and always signed.
/// There is deliberately no `Debug`, since the headers may hold a security token.
#[derive(Clone, Copy)]
pub struct SignableRequest<'a> {
    /// HTTP method, in any case.
    pub method: &'a str,
    /// Host the request is sent to, e.g. `dbss.cn-north-4.myhuaweicloud.com`.
    pub host: &'a str,
    /// Path, not yet percent-encoded, e.g. `/v1/{project_id}/audit/upgrade/status`.
    pub path: &'a str,
    /// Query parameters as decoded key and value pairs, in any order.
    pub query: &'a [(String, String)],
    /// Headers other than `Host`; must include `X-Sdk-Date` for [`sign`].
    pub headers: &'a [(String, String)],
    /// Request body, empty for a `GET`.
    pub body: &'a [u8],
}

/// The result of [`sign`]: the header to send and the steps that led to it.
///
/// `Debug` hides the signature, the `Authorization` value and any security token.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string the HMAC was computed over.
    pub string_to_sign: String,
    /// Lower-case names of the signed headers, joined with `;`.
    pub signed_headers: String,
    /// The HMAC-SHA256 signature in lower-case hex.
    pub signature_hex: String,
    /// The complete value of the `Authorization` header.
    pub authorization: String,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field(
                "canonical_request",
                &without_security_token(&self.canonical_request),
            )
            .field("string_to_sign", &self.string_to_sign)
            .field("signed_headers", &self.signed_headers)
            .field("signature_hex", &format_args!("{REDACTED}"))
            .field("authorization", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// A parsed `Authorization: SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
///
/// `Debug` hides the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    /// The access key (AK) that claims to have signed the request.
    pub access: String,
    /// Lower-case names of the signed headers, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature in hex, as sent.
    pub signature: String,
}

impl fmt::Debug for AuthorizationHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationHeader")
            .field("access", &self.access)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// Formats a time as `X-Sdk-Date` wants it: `YYYYMMDDTHHMMSSZ`, in UTC.
pub fn format_sdk_date(t: DateTime<Utc>) -> String {
    t.format(SDK_DATE_FORMAT).to_string()
}

/// Parses an `X-Sdk-Date` value such as `20250209T154442Z`.
pub fn parse_sdk_date(s: &str) -> Result<DateTime<Utc>, SignError> {
    let bad = || SignError::BadDate(s.to_string());

    // chrono's `%Y` would also take signs and extra digits, which the cloud does not.
    if s.len() != 16 || !s.is_ascii() {
        return Err(bad());
    }

    NaiveDateTime::parse_from_str(s, SDK_DATE_FORMAT)
        .map(|naive| naive.and_utc())
        .map_err(|_| bad())
}

/// Builds the canonical request of `req`.
///
/// Returns the canonical request and the signed header list (lower-case names
/// joined with `;`). Headers whose name contains `_` are left out, as the SDK does.
pub fn canonical_request(req: &SignableRequest) -> (String, String) {
    let headers = signed_header_pairs(req);
    let header_block: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed_headers = names.join(";");

    let canonical = [
        req.method.to_ascii_uppercase(),
        canonical_path(req.path),
        canonical_query(req.query),
        header_block,
        signed_headers.clone(),
        hex_sha256(req.body),
    ]
    .join("\n");
    (canonical, signed_headers)
}

/// Builds the string the HMAC is computed over.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    let digest = hex_sha256(canonical_request.as_bytes());
    format!("{ALGORITHM}\n{sdk_date}\n{digest}")
}

/// Signs `req` with the access key `ak` and the secret key `sk`.
///
/// `req.headers` must hold a valid `X-Sdk-Date` (any case); the caller adds the
/// returned [`Signature::authorization`] as the `Authorization` header.
pub fn sign(req: &SignableRequest, ak: &str, sk: &[u8]) -> Result<Signature, SignError> {
    let sdk_date = header_value(req.headers, SDK_DATE_HEADER).ok_or(SignError::MissingDate)?;
    parse_sdk_date(sdk_date)?;

    let (canonical, signed_headers) = canonical_request(req);
    let to_sign = string_to_sign(sdk_date, &canonical);

    let mut mac = keyed_mac(sk)?;
    mac.update(to_sign.as_bytes());
    let signature_hex = hex::encode(mac.finalize().into_bytes());

    let authorization = format!(
        "{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature_hex}"
    );
    Ok(Signature {
        canonical_request: canonical,
        string_to_sign: to_sign,
        signed_headers,
        signature_hex,
        authorization,
    })
}

/// Parses the value of an `Authorization` header.
///
/// Spaces around the commas are tolerated. Each of `Access`, `SignedHeaders` and
/// `Signature` must appear exactly once, and nothing else may.
pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader, SignError> {
    let (algorithm, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(SignError::WrongAlgorithm);
    }

    let params = rest
        .split(',')
        .map(|part| part.trim().split_once('='))
        .collect::<Option<Vec<_>>>()
        .ok_or(SignError::MalformedAuthorization)?;

    // Three parts, each found exactly once, leaves no room for an unknown one.
    let access = auth_param(&params, "Access")?;
    let signed_headers = parse_signed_headers(auth_param(&params, "SignedHeaders")?)?;
    let signature = auth_param(&params, "Signature")?;
    if params.len() != 3 || !is_sha256_hex(signature) {
        return Err(SignError::MalformedAuthorization);
    }

    Ok(AuthorizationHeader {
        access: access.to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

/// Checks a received request against its parsed `Authorization` header.
///
/// `headers` are all request headers as received, names in any case. Only those
/// named in `SignedHeaders` are signed; `host` is the `Host` the request came
/// with. `query` holds decoded pairs. The signatures are compared in constant
/// time. The caller still checks that the access key is known and that the
/// `X-Sdk-Date` is close enough to its clock.
// One argument per part of the received request keeps call sites plain.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    method: &str,
    host: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body: &[u8],
    sk: &[u8],
    auth: &AuthorizationHeader,
) -> Result<(), SignError> {
    let signed = pick_signed_headers(headers, &auth.signed_headers)?;
    let sdk_date = header_value(headers, SDK_DATE_HEADER).ok_or(SignError::MissingDate)?;
    parse_sdk_date(sdk_date)?;

    let req = SignableRequest {
        method,
        host,
        path,
        query,
        headers: &signed,
        body,
    };
    let (canonical, _) = canonical_request(&req);
    let claimed = hex::decode(&auth.signature).map_err(|_| SignError::MalformedAuthorization)?;

    // `verify_slice` compares in constant time, so timing tells nothing of the match.
    let mut mac = keyed_mac(sk)?;
    mac.update(string_to_sign(sdk_date, &canonical).as_bytes());
    mac.verify_slice(&claimed)
        .map_err(|_| SignError::SignatureMismatch)
}

/// The headers to sign as trimmed `(lower-case name, value)` pairs, sorted by name,
/// with the host added.
fn signed_header_pairs(req: &SignableRequest) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(name, _)| !name.contains('_') && !name.eq_ignore_ascii_case("host"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();

    // The host always counts, and comes from the request rather than the header list.
    pairs.push(("host".to_string(), req.host.trim().to_string()));

    // A stable sort keeps repeated names in the order given.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

/// Encodes each path segment and makes sure the path ends with `/`.
fn canonical_path(path: &str) -> String {
    // The SDK decodes the path first, so an already encoded path is not encoded twice.
    let decoded = percent_decode(path);
    let segments: Vec<String> = decoded.split(|&b| b == b'/').map(percent_encode).collect();

    let mut canonical = segments.join("/");
    if !canonical.ends_with('/') {
        canonical.push('/');
    }
    canonical
}

/// Sorts the query by key, then value, and encodes it as `k=v` joined with `&`.
fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = query.iter().collect();
    pairs.sort();

    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_bytes()),
                percent_encode(v.as_bytes())
            )
        })
        .collect();
    encoded.join("&")
}

/// Percent-encodes every byte except ASCII letters, digits and `-_.~`, with
/// upper-case hex.
fn percent_encode(input: &[u8]) -> String {
    const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

    let mut out = String::with_capacity(input.len());
    for &byte in input {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());

    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' => bytes.get(i + 1..i + 3).and_then(hex_byte),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// The byte written by two hex digits, if they are hex digits.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

/// Lower-case hex SHA-256 of `data`.
fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// An HMAC-SHA256 keyed with the secret key.
fn keyed_mac(sk: &[u8]) -> Result<HmacSha256, SignError> {
    HmacSha256::new_from_slice(sk).map_err(|_| SignError::InvalidKey)
}

/// The trimmed value of the first header called `name`, in any case.
fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// For each name in `SignedHeaders` except `host`, the received header of that name.
fn pick_signed_headers(
    headers: &[(String, String)],
    names: &[String],
) -> Result<Vec<(String, String)>, SignError> {
    names
        .iter()
        .filter(|name| !name.eq_ignore_ascii_case("host"))
        .map(|name| {
            header_value(headers, name)
                .map(|value| (name.clone(), value.to_string()))
                .ok_or_else(|| SignError::MissingSignedHeader(name.clone()))
        })
        .collect()
}

/// The value of the one `Authorization` part called `key`; absent, repeated or
/// empty is malformed.
fn auth_param<'v>(params: &[(&str, &'v str)], key: &str) -> Result<&'v str, SignError> {
    let mut found = params.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v);
    match (found.next(), found.next()) {
        (Some(value), None) if !value.is_empty() => Ok(value),
        _ => Err(SignError::MalformedAuthorization),
    }
}

/// Splits `SignedHeaders` on `;` into lower-case names; an empty name is malformed.
fn parse_signed_headers(list: &str) -> Result<Vec<String>, SignError> {
    list.split(';')
        .map(|name| match name.trim() {
            "" => Err(SignError::MalformedAuthorization),
            name => Ok(name.to_ascii_lowercase()),
        })
        .collect()
}

/// Whether `s` is the hex form of a SHA-256 sized MAC.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The canonical request with the security token's value hidden.
fn without_security_token(canonical: &str) -> String {
    let prefix = format!("{SECURITY_TOKEN_HEADER}:");
    let lines: Vec<String> = canonical
        .split('\n')
        .map(|line| {
            if line.starts_with(&prefix) {
                format!("{prefix}{REDACTED}")
            } else {
                line.to_string()
            }
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    /// The fixture file: requests signed by the official SDK.
    #[derive(Deserialize)]
    struct Fixture {
        vectors: Vec<Vector>,
    }

    /// One signed request and what the SDK computed for it.
    #[derive(Deserialize)]
    struct Vector {
        ak: String,
        sk: String,
        method: String,
        host: String,
        path: String,
        query: Vec<(String, String)>,
        headers: BTreeMap<String, String>,
        body: String,
        canonical_request: String,
        string_to_sign: String,
        authorization: String,
    }

    impl Vector {
        /// The headers as a signer is given them (no `Host`).
        fn header_list(&self) -> Vec<(String, String)> {
            self.headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }

        /// The headers as a server receives them: lower-case, with `Host`.
        fn received_headers(&self) -> Vec<(String, String)> {
            let mut headers: Vec<(String, String)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            headers.push(("host".to_string(), self.host.clone()));
            headers
        }

        /// Verifies the vector's own authorization against the given request parts.
        fn verify_parts(
            &self,
            query: &[(String, String)],
            headers: &[(String, String)],
            body: &[u8],
            sk: &[u8],
        ) -> Result<(), SignError> {
            let auth = parse_authorization(&self.authorization).expect("vector header parses");
            verify(
                &self.method,
                &self.host,
                &self.path,
                query,
                headers,
                body,
                sk,
                &auth,
            )
        }

        /// Verifies the vector exactly as it was signed.
        fn verify_as_signed(&self) -> Result<(), SignError> {
            let headers = self.received_headers();
            self.verify_parts(
                &self.query,
                &headers,
                self.body.as_bytes(),
                self.sk.as_bytes(),
            )
        }
    }

    fn vectors() -> Vec<Vector> {
        let text = include_str!("../tests/fixtures/sdk-hmac-sha256.json");
        let fixture: Fixture = serde_json::from_str(text).expect("fixture is valid json");
        assert_eq!(fixture.vectors.len(), 12, "fixture should hold 12 vectors");
        fixture.vectors
    }

    /// The vector that has query parameters needing encoding.
    fn vector_with_query() -> Vector {
        let v = vectors().into_iter().find(|v| !v.query.is_empty());
        v.expect("a vector has a query")
    }

    /// The vector that has a body.
    fn vector_with_body() -> Vector {
        let v = vectors().into_iter().find(|v| !v.body.is_empty());
        v.expect("a vector has a body")
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn request<'a>(
        path: &'a str,
        query: &'a [(String, String)],
        headers: &'a [(String, String)],
    ) -> SignableRequest<'a> {
        SignableRequest {
            method: "get",
            host: "example.com",
            path,
            query,
            headers,
            body: b"",
        }
    }

    /// Every SDK-signed vector is reproduced exactly, step by step.
    #[test]
    fn reproduces_every_sdk_vector() {
        for (i, v) in vectors().iter().enumerate() {
            let headers = v.header_list();
            let req = SignableRequest {
                method: &v.method,
                host: &v.host,
                path: &v.path,
                query: &v.query,
                headers: &headers,
                body: v.body.as_bytes(),
            };

            let sig = sign(&req, &v.ak, v.sk.as_bytes()).expect("vector signs");

            assert_eq!(
                sig.canonical_request, v.canonical_request,
                "canonical request of vector {i}"
            );
            assert_eq!(
                sig.string_to_sign, v.string_to_sign,
                "string to sign of vector {i}"
            );
            assert_eq!(
                sig.authorization, v.authorization,
                "authorization of vector {i}"
            );
        }
    }

    /// The public steps agree with `sign`.
    #[test]
    fn public_steps_match_sign() {
        let v = vector_with_query();
        let headers = v.header_list();
        let req = SignableRequest {
            method: &v.method,
            host: &v.host,
            path: &v.path,
            query: &v.query,
            headers: &headers,
            body: v.body.as_bytes(),
        };

        let (canonical, signed) = canonical_request(&req);
        let date = &v.headers["X-Sdk-Date"];

        assert_eq!(canonical, v.canonical_request);
        assert!(v
            .authorization
            .contains(&format!("SignedHeaders={signed},")));
        assert_eq!(string_to_sign(date, &canonical), v.string_to_sign);
    }

    /// `verify` accepts each vector's own authorization.
    #[test]
    fn verify_accepts_every_vector() {
        for (i, v) in vectors().iter().enumerate() {
            assert_eq!(v.verify_as_signed(), Ok(()), "vector {i}");
        }
    }

    /// Header names arrive in any case and in any order.
    #[test]
    fn verify_ignores_header_name_case() {
        let v = vector_with_query();
        let mut headers: Vec<(String, String)> = v
            .received_headers()
            .into_iter()
            .map(|(k, value)| (k.to_ascii_uppercase(), value))
            .collect();
        headers.reverse();

        let result = v.verify_parts(&v.query, &headers, b"", v.sk.as_bytes());

        assert_eq!(result, Ok(()));
    }

    /// A signature with one hex digit changed is refused.
    #[test]
    fn verify_rejects_tampered_signature() {
        let v = vector_with_query();
        let mut auth = parse_authorization(&v.authorization).unwrap();
        let first = if auth.signature.starts_with('0') {
            "1"
        } else {
            "0"
        };
        auth.signature.replace_range(0..1, first);

        let headers = v.received_headers();
        let sk = v.sk.as_bytes();
        let result = verify(
            &v.method, &v.host, &v.path, &v.query, &headers, b"", sk, &auth,
        );

        assert_eq!(result, Err(SignError::SignatureMismatch));
    }

    /// A request checked with another secret key is refused.
    #[test]
    fn verify_rejects_other_secret_key() {
        let v = vector_with_query();
        let headers = v.received_headers();

        let result = v.verify_parts(&v.query, &headers, b"", b"not-the-secret-key");

        assert_eq!(result, Err(SignError::SignatureMismatch));
    }

    /// A request lacking a header named in `SignedHeaders` is refused, naming it.
    #[test]
    fn verify_rejects_missing_signed_header() {
        let v = vector_with_query();
        let mut headers = v.received_headers();
        headers.retain(|(k, _)| k != "x-project-id");

        let result = v.verify_parts(&v.query, &headers, b"", v.sk.as_bytes());

        assert_eq!(
            result,
            Err(SignError::MissingSignedHeader("x-project-id".to_string()))
        );
    }

    /// A request whose query value changed is refused.
    #[test]
    fn verify_rejects_changed_query_value() {
        let v = vector_with_query();
        let mut query = v.query.clone();
        query[0].1.push('0');

        let headers = v.received_headers();
        let result = v.verify_parts(&query, &headers, b"", v.sk.as_bytes());

        assert_eq!(result, Err(SignError::SignatureMismatch));
    }

    /// A request whose body changed is refused.
    #[test]
    fn verify_rejects_changed_body() {
        let v = vector_with_body();
        let body = v.body.replace("upgrade_version", "upgrade_versiom");

        let headers = v.received_headers();
        let result = v.verify_parts(&v.query, &headers, body.as_bytes(), v.sk.as_bytes());

        assert_eq!(result, Err(SignError::SignatureMismatch));
    }

    /// A request without `X-Sdk-Date` cannot be verified.
    #[test]
    fn verify_rejects_missing_date() {
        let v = vector_with_query();
        let mut auth = parse_authorization(&v.authorization).unwrap();
        auth.signed_headers.retain(|n| n != "x-sdk-date");
        let mut headers = v.received_headers();
        headers.retain(|(k, _)| k != "x-sdk-date");

        let sk = v.sk.as_bytes();
        let result = verify(
            &v.method, &v.host, &v.path, &v.query, &headers, b"", sk, &auth,
        );

        assert_eq!(result, Err(SignError::MissingDate));
    }

    /// The parser reads all three parts and lower-cases header names.
    #[test]
    fn parse_authorization_reads_parts() {
        let sig = "ab".repeat(32);
        let value =
            format!("{ALGORITHM} Access=AK1,SignedHeaders=Host;X-Sdk-Date,  Signature={sig}");

        let auth = parse_authorization(&value).unwrap();

        assert_eq!(auth.access, "AK1");
        assert_eq!(auth.signed_headers, ["host", "x-sdk-date"]);
        assert_eq!(auth.signature, sig);
    }

    /// Another algorithm, or no algorithm at all, is refused as such.
    #[test]
    fn parse_authorization_rejects_wrong_algorithm() {
        let sig = "ab".repeat(32);
        for value in [
            format!("SDK-HMAC-SHA512 Access=AK, SignedHeaders=host, Signature={sig}"),
            format!("Access=AK, SignedHeaders=host, Signature={sig}"),
            "Bearer abc".to_string(),
            String::new(),
        ] {
            assert_eq!(
                parse_authorization(&value),
                Err(SignError::WrongAlgorithm),
                "{value}"
            );
        }
    }

    /// Missing, empty, repeated or unknown parts are malformed.
    #[test]
    fn parse_authorization_rejects_malformed() {
        let sig = "ab".repeat(32);
        for rest in [
            String::new(),
            format!("SignedHeaders=host, Signature={sig}"),
            format!("Access=AK, Signature={sig}"),
            "Access=AK, SignedHeaders=host".to_string(),
            format!("Access=, SignedHeaders=host, Signature={sig}"),
            format!("Access=AK, SignedHeaders=host;;date, Signature={sig}"),
            format!("Access=AK, Access=AK, SignedHeaders=host, Signature={sig}"),
            format!("Access=AK, SignedHeaders=host, Signature={sig}, Extra=1"),
            format!("Access=AK SignedHeaders=host, Signature={sig}"),
            "Access=AK, SignedHeaders=host, Signature=abc".to_string(),
            format!(
                "Access=AK, SignedHeaders=host, Signature={}",
                "zz".repeat(32)
            ),
        ] {
            let value = format!("{ALGORITHM} {rest}");
            let result = parse_authorization(&value);
            assert_eq!(result, Err(SignError::MalformedAuthorization), "{rest}");
        }
    }

    /// Only letters, digits and `-_.~` survive; the rest is upper-case `%XX` per byte.
    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode(b" "), "%20");
        assert_eq!(percent_encode(b"/"), "%2F");
        assert_eq!(percent_encode(b"~"), "~");
        assert_eq!(percent_encode("é".as_bytes()), "%C3%A9");
        assert_eq!(percent_encode(b"&"), "%26");
        assert_eq!(percent_encode(b"="), "%3D");
        assert_eq!(percent_encode(b"aZ09-_.~+"), "aZ09-_.~%2B");
    }

    /// Escapes are decoded; a stray `%` stays.
    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2fc"), b"a b/c");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }

    /// Segments are encoded and exactly one trailing `/` ends the path.
    #[test]
    fn canonical_path_segments_and_trailing_slash() {
        assert_eq!(canonical_path("/v3/projects"), "/v3/projects/");
        assert_eq!(canonical_path("/v3/projects/"), "/v3/projects/");
        assert_eq!(canonical_path("/a b/é"), "/a%20b/%C3%A9/");
        assert_eq!(canonical_path("/a%20b"), "/a%20b/");
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/"), "/");
    }

    /// The query is sorted by key, then value, after which it is encoded.
    #[test]
    fn canonical_query_sorts_and_encodes() {
        let query = pairs(&[("b", "2"), ("a", "y z"), ("a", "x"), ("é", "&=")]);

        assert_eq!(canonical_query(&query), "a=x&a=y%20z&b=2&%C3%A9=%26%3D");
        assert_eq!(canonical_query(&[]), "");
    }

    /// Headers with `_` in the name are not signed; `Host` comes from the request.
    #[test]
    fn underscore_headers_are_not_signed() {
        let headers = pairs(&[("X_Custom", "1"), ("X-Sdk-Date", "20250101T000000Z")]);
        let (canonical, signed) = canonical_request(&request("/", &[], &headers));

        assert_eq!(signed, "host;x-sdk-date");
        assert!(!canonical.contains("x_custom"), "{canonical}");
    }

    /// Names are lower-cased and values trimmed; a `Host` in the list is replaced.
    #[test]
    fn header_values_are_trimmed() {
        let headers = pairs(&[
            ("X-Sdk-Date", " 20250101T000000Z\t"),
            ("HOST", "other.example"),
        ]);
        let (canonical, signed) = canonical_request(&request("/p", &[], &headers));

        let expected = "GET\n/p/\n\nhost:example.com\nx-sdk-date:20250101T000000Z\n\n\
                        host;x-sdk-date\n\
                        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(canonical, expected);
        assert_eq!(signed, "host;x-sdk-date");
    }

    /// `Debug` of a signature shows neither the signature, the header nor the token.
    #[test]
    fn signature_debug_is_redacted() {
        let v = vectors()
            .into_iter()
            .find(|v| v.headers.contains_key("X-Security-Token"))
            .expect("a vector has a security token");
        let headers = v.header_list();
        let req = SignableRequest {
            method: &v.method,
            host: &v.host,
            path: &v.path,
            query: &v.query,
            headers: &headers,
            body: b"",
        };
        let sig = sign(&req, &v.ak, v.sk.as_bytes()).unwrap();

        let shown = format!("{sig:?}");

        assert!(!shown.contains(&sig.signature_hex), "{shown}");
        assert!(!shown.contains(&v.headers["X-Security-Token"]), "{shown}");
        assert!(shown.contains("signature_hex: <redacted>"), "{shown}");
        assert!(shown.contains("x-security-token:<redacted>"), "{shown}");
    }

    /// `Debug` of a parsed header hides the signature.
    #[test]
    fn authorization_header_debug_is_redacted() {
        let v = vector_with_query();
        let auth = parse_authorization(&v.authorization).unwrap();

        let shown = format!("{auth:?}");

        assert!(!shown.contains(&auth.signature), "{shown}");
        assert!(shown.contains(&auth.access), "{shown}");
    }

    /// Signing needs `X-Sdk-Date`, and a well-formed one.
    #[test]
    fn sign_requires_a_valid_date() {
        let none = pairs(&[("Content-Type", "application/json")]);
        let bad = pairs(&[("x-sdk-date", "2025-01-01T00:00:00Z")]);

        assert_eq!(
            sign(&request("/", &[], &none), "AK", b"SK").unwrap_err(),
            SignError::MissingDate
        );
        assert_eq!(
            sign(&request("/", &[], &bad), "AK", b"SK").unwrap_err(),
            SignError::BadDate("2025-01-01T00:00:00Z".to_string())
        );
    }

    /// Dates round-trip, and near misses are refused.
    #[test]
    fn sdk_date_round_trip() {
        let t = parse_sdk_date("20250209T154442Z").unwrap();

        assert_eq!(t.to_rfc3339(), "2025-02-09T15:44:42+00:00");
        assert_eq!(format_sdk_date(t), "20250209T154442Z");
        for bad in [
            "20250209T154442",
            "20251309T154442Z",
            "+2025209T154442Z",
            "",
            "20250209 154442Z",
        ] {
            assert!(parse_sdk_date(bad).is_err(), "{bad}");
        }
    }

    /// Error messages never carry the secret key or a signature.
    #[test]
    fn errors_do_not_leak_secrets() {
        let v = vector_with_query();
        let headers = v.received_headers();
        let auth = parse_authorization(&v.authorization).unwrap();
        let sk = b"other-secret-key";

        let err = verify(
            &v.method, &v.host, &v.path, &v.query, &headers, b"", sk, &auth,
        )
        .unwrap_err()
        .to_string();

        assert!(!err.contains(&auth.signature), "{err}");
        assert!(!err.contains("other-secret-key"), "{err}");
        assert!(!err.contains(&v.sk), "{err}");
    }
}
