//! The simulator's sign-in checks, driven with the exporter's own signer:
//! what it accepts and the exact refusal of each kind of bad request.

use std::time::{Duration, SystemTime};

use chrono::Utc;
use dbss_exporter::auth::aksk::{sign_request, Keys};
use dbss_exporter::secret::Secret;
use dbss_exporter::sim::{instance_json, Simulator};
use serde_json::{json, Value};

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

async fn sim() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.set_instances(PROJECT, vec![instance_json("i-1", "25.1", 2, None, 1)]);
    sim.add_access_key("AKGOOD", "sk-good");
    sim
}

fn keys(ak: &str, sk: &str) -> Keys {
    Keys {
        ak: ak.into(),
        sk: Secret::new(sk),
        security_token: None,
    }
}

fn request(sim: &Simulator) -> reqwest::Request {
    let url = format!("{}/v1/{PROJECT}/audit/upgrade/status", sim.url());
    reqwest::Client::new()
        .get(url)
        .header("Content-Type", "application/json")
        .build()
        .unwrap()
}

async fn send(req: reqwest::Request) -> (u16, Value) {
    let resp = reqwest::Client::new().execute(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

async fn signed(sim: &Simulator, keys: &Keys, at: chrono::DateTime<Utc>) -> (u16, Value) {
    let mut req = request(sim);
    sign_request(&mut req, keys, PROJECT, at).unwrap();
    send(req).await
}

fn code(body: &Value) -> &str {
    body["error_code"].as_str().unwrap_or_default()
}

/// A correctly signed request is answered, and its signature is recorded
/// among the secrets.
#[tokio::test]
async fn signed_request_is_accepted() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = sim().await;
        let (status, body) = signed(&sim, &keys("AKGOOD", "sk-good"), Utc::now()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["audit_upgrade_infos"][0]["instance_id"], "i-1");
        assert_eq!(sim.seen_secrets().len(), 1);
    })
    .await
    .unwrap();
}

/// Each kind of bad AK/SK request gets a 401 with its own gateway code.
#[tokio::test]
async fn bad_signatures_are_refused_with_gateway_codes() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = sim().await;
        let (s, b) = signed(&sim, &keys("AKGOOD", "sk-wrong"), Utc::now()).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0303"));
        assert_eq!(
            b["error_msg"],
            "Incorrect IAM authentication information: verify aksk signature fail"
        );

        let (s, b) = signed(&sim, &keys("AKNOBODY", "sk-good"), Utc::now()).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0301"));
        assert_eq!(
            b["error_msg"],
            "Incorrect IAM authentication information: the access key does not exist"
        );

        let late = Utc::now() - chrono::Duration::minutes(16);
        let (s, b) = signed(&sim, &keys("AKGOOD", "sk-good"), late).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0304"));

        let early = Utc::now() + chrono::Duration::minutes(14);
        let (s, _) = signed(&sim, &keys("AKGOOD", "sk-good"), early).await;
        assert_eq!(s, 200);
    })
    .await
    .unwrap();
}

/// Removing a signed header or the date, or changing a signed value after
/// signing, is caught.
#[tokio::test]
async fn tampered_requests_are_refused() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = sim().await;
        let good = keys("AKGOOD", "sk-good");

        let mut req = request(&sim);
        sign_request(&mut req, &good, PROJECT, Utc::now()).unwrap();
        req.headers_mut().remove("content-type");
        let (s, b) = send(req).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0301"));
        assert_eq!(
            b["error_msg"],
            "Incorrect IAM authentication information: signed header \"content-type\" is missing from the request"
        );

        let mut req = request(&sim);
        sign_request(&mut req, &good, PROJECT, Utc::now()).unwrap();
        req.headers_mut().remove("x-sdk-date");
        let (s, b) = send(req).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0301"));
        assert_eq!(
            b["error_msg"],
            "Incorrect IAM authentication information: x-sdk-date not found"
        );

        let mut req = request(&sim);
        sign_request(&mut req, &good, PROJECT, Utc::now()).unwrap();
        req.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
        let (s, b) = send(req).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0303"));

        let (s, b) = send(request(&sim)).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0301"));
    })
    .await
    .unwrap();
}

/// Temporary keys need their security token and die at their expiry.
#[tokio::test]
async fn temporary_keys_need_their_token_and_expire() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = sim().await;
        let soon = SystemTime::now() + Duration::from_secs(600);
        sim.add_temporary_key("AKTMP", "sk-tmp", "st-tmp", soon);
        let mut with_token = keys("AKTMP", "sk-tmp");
        let (s, b) = signed(&sim, &with_token, Utc::now()).await;
        assert_eq!(
            b["error_msg"],
            "Incorrect IAM authentication information: x-security-token not found"
        );
        assert_eq!(s, 401);

        with_token.security_token = Some(Secret::new("st-tmp"));
        assert_eq!(signed(&sim, &with_token, Utc::now()).await.0, 200);

        sim.add_temporary_key("AKTMP", "sk-tmp", "st-tmp", SystemTime::now());
        let (s, b) = signed(&sim, &with_token, Utc::now()).await;
        assert_eq!(s, 401);
        assert_eq!(
            b["error_msg"],
            "Incorrect IAM authentication information: the access key has expired"
        );
    })
    .await
    .unwrap();
}

/// IAM issues project-scoped tokens that the API takes until they die, and
/// refuses a wrong password in the IAM error shape.
#[tokio::test]
async fn iam_tokens_are_project_scoped_and_expire() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = sim().await;
        sim.add_iam_user("acme", "ops", "pw-good");
        sim.set_token_lifetime(Duration::from_secs(2));
        let client = reqwest::Client::new();
        let sign_in = |password: &str| {
            client
                .post(format!("{}/v3/auth/tokens", sim.url()))
                .body(
                    json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": "ops", "password": password, "domain": {"name": "acme"}}}},
                    "scope": {"project": {"id": PROJECT}}}})
                    .to_string(),
                )
                .send()
        };

        let refused = sign_in("pw-bad").await.unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        let body: Value = serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
        assert_eq!(
            body["error"]["message"],
            "The username or password is wrong."
        );

        let ok = sign_in("pw-good").await.unwrap();
        assert_eq!(ok.status().as_u16(), 201);
        let token = ok.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
        assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(sim.iam_calls(), 2);

        let mut req = request(&sim);
        req.headers_mut()
            .insert("x-auth-token", token.parse().unwrap());
        assert_eq!(send(req.try_clone().unwrap()).await.0, 200);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (s, b) = send(req).await;
        assert_eq!((s, code(&b)), (401, "APIGW.0307"));
    })
    .await
    .unwrap();
}
