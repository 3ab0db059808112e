//! Tokens shaped like Keycloak, Auth0, Okta and Microsoft Entra, verified with the example
//! configs in `examples/issuers/` (the README shows the same files). Each config is used as
//! written except for the issuer URL, which points at the local TestIdp.

use crate::common::*;
use agui_auth::AuthConfig;
use agui_auth::testing::TestIdp;
use serde_json::{Value, json};

fn example(name: &str) -> AuthConfig {
    let path = format!(
        "{}/examples/issuers/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    #[derive(serde::Deserialize)]
    struct File {
        auth: AuthConfig,
    }
    toml::from_str::<File>(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .auth
}

/// The example config, pointed at `idp` (issuer URL only), and a token with the vendor's claims.
async fn verify(idp: &TestIdp, name: &str, claims: Value) -> agui_auth::Principal {
    let mut config = example(name);
    let audience = config.issuers[0].audiences[0].clone();
    config.issuers[0].issuer = idp.issuer_url();
    let (auth, _) = start(idp, config).await;
    let mut full = idp.claims("user-1");
    full["aud"] = json!(audience);
    for (k, v) in claims.as_object().unwrap() {
        full[k] = v.clone();
    }
    if full.get("scope").is_some_and(Value::is_null) {
        full.as_object_mut().unwrap().remove("scope");
    }
    assert_accepted(check(&auth, &idp.sign("rsa-1", &full)).await)
}

#[tokio::test]
async fn keycloak_realm_roles() {
    let idp = TestIdp::start().await;
    let p = verify(&idp, "keycloak", json!({"realm_access": {"roles": ["admin", "offline_access"]}, "preferred_username": "kc-user"})).await;
    assert_eq!(p.roles, ["admin", "offline_access"]);
    assert_eq!(p.name.as_deref(), Some("kc-user"));
}

#[tokio::test]
async fn auth0_namespaced_roles_and_scope_string() {
    let idp = TestIdp::start().await;
    let p = verify(
        &idp,
        "auth0",
        json!({"https://agui.example.com/roles": ["viewer"], "scope": "openid chat"}),
    )
    .await;
    assert_eq!(p.roles, ["viewer"]);
    assert!(p.has_scope("chat"));
}

#[tokio::test]
async fn okta_scp_array_and_groups() {
    let idp = TestIdp::start().await;
    let p = verify(
        &idp,
        "okta",
        json!({"scope": null, "scp": ["chat", "profile"], "groups": ["Everyone", "admin"]}),
    )
    .await;
    assert!(p.has_scope("chat"));
    assert!(p.has_role("admin"));
}

#[tokio::test]
async fn okta_without_the_required_scope_is_403() {
    let idp = TestIdp::start().await;
    let mut config = example("okta");
    config.issuers[0].issuer = idp.issuer_url();
    let (auth, _) = start(&idp, config).await;
    let mut claims = idp.claims("user-1");
    claims["aud"] = json!("api://agui");
    claims.as_object_mut().unwrap().remove("scope");
    claims["scp"] = json!(["profile"]);
    let error = check(&auth, &idp.sign("rsa-1", &claims))
        .await
        .expect_err("no chat scope");
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
    assert_eq!(error.code(), "insufficient_scope");
}

#[tokio::test]
async fn entra_keys_without_alg_and_app_roles() {
    let idp = TestIdp::builder().jwk_alg(false).start().await;
    let p = verify(
        &idp,
        "entra",
        json!({"roles": ["Documents.Admin"], "preferred_username": "e@contoso.test"}),
    )
    .await;
    assert_eq!(p.roles, ["Documents.Admin"]);
    assert_eq!(p.name.as_deref(), Some("e@contoso.test"));
}

#[test]
fn the_readme_shows_every_example_config() {
    let readme = include_str!("../../README.md");
    for name in ["keycloak", "auth0", "okta", "entra"] {
        let path = format!(
            "{}/examples/issuers/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            readme.contains(text.trim()),
            "README must embed examples/issuers/{name}.toml verbatim"
        );
    }
}
