//! The exact Okta request each lifecycle route sends (method, path, query, body), read from the
//! sandbox's request log.

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{Sandboxed, tempdir};

async fn id_of(s: &Sandboxed, login: &str) -> String {
    let v: Value = s
        .okta(Method::GET, &format!("/api/v1/users/{login}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    v["id"].as_str().expect("id").to_owned()
}

/// (login, route, query, (Okta method, path tail, Okta query)).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
    ),
);

#[tokio::test]
async fn deactivate_unlock_reactivate_and_reset_factors_send_exactly_okta_s_calls() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s
        .app
        .client_with("soar", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    let cases: [Case; 4] = [
        (
            "jane.doe@example.com",
            "deactivate",
            "?send_email=false",
            ("POST", "lifecycle/deactivate", vec![("sendEmail", "false")]),
        ),
        (
            "locked.out@example.com",
            "unlock",
            "",
            ("POST", "lifecycle/unlock", vec![]),
        ),
        (
            "provisioned.user@example.com",
            "reactivate",
            "?send_email=true",
            ("POST", "lifecycle/reactivate", vec![("sendEmail", "true")]),
        ),
        (
            "john.smith@example.com",
            "reset-factors",
            "",
            ("POST", "lifecycle/reset_factors", vec![]),
        ),
    ];
    for (login, route, query, (method, tail, okta_query)) in cases {
        let uid = id_of(&s, login).await;
        s.sandbox.clear_requests();
        let (st, body) = s
            .app
            .post_json(
                &format!("/v1/users/{login}/{route}{query}"),
                &token,
                &json!({"reason": "issue 13: the exact call"}),
            )
            .await;
        assert_eq!(st, 200, "{route}: {body}");
        let writes: Vec<_> = s
            .sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect();
        assert_eq!(writes.len(), 1, "{route}: {writes:?}");
        let w = &writes[0];
        assert_eq!(w.method, method, "{route}");
        assert_eq!(w.path, format!("/api/v1/users/{uid}/{tail}"), "{route}");
        let q: Vec<(&str, &str)> = w
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(q, okta_query, "{route}");
        assert!(
            w.body.is_none() || w.body == Some(Value::Null),
            "{route}: {:?}",
            w.body
        );
        assert_eq!(
            body["okta_requests"][0]["path"], w.path,
            "{route}: the answer shows the call"
        );
    }
}
