//! The stand-in's routes (see `github.rs` for what each models and where it is documented).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::github::{
    GitHubFault, GitHubHits, Grant, IssuedToken, StandInState, StandInUser, issue, lock,
    random_alphanumeric,
};

type S = State<Arc<StandInState>>;

const DOCS: &str = "https://docs.github.com/rest";

pub(crate) fn router(state: Arc<StandInState>) -> Router {
    Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/v3/applications/{client_id}/token", post(check_token))
        .route("/api/v3/user", get(user))
        .route("/api/v3/user/orgs", get(user_orgs))
        .route("/api/v3/user/teams", get(user_teams))
        .route("/__standin/state", get(control_state))
        .route("/__standin/fault", post(control_fault))
        .route("/__standin/tokens", post(control_tokens))
        .route("/__standin/auto_approve", post(control_auto_approve))
        .route("/__standin/revoke", post(control_revoke))
        .with_state(state)
}

fn now() -> i64 {
    crate::dev::unix_now()
}

/// Counts the hit and answers for the current fault, if any.
async fn gate(state: &StandInState, hit: fn(&mut GitHubHits)) -> Option<Response> {
    hit(&mut lock(&state.hits));
    let fault = *lock(&state.fault);
    match fault {
        GitHubFault::None => None,
        GitHubFault::RateLimited => {
            let mut response = (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": format!("{DOCS}/overview/rate-limits-for-the-rest-api"),
                })),
            )
                .into_response();
            let h = response.headers_mut();
            h.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            h.insert("x-ratelimit-used", HeaderValue::from_static("5000"));
            h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
            if let Ok(reset) = HeaderValue::from_str(&(now() + 60).to_string()) {
                h.insert("x-ratelimit-reset", reset);
            }
            Some(response)
        }
        GitHubFault::SecondaryRateLimit => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "30")],
                axum::Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
            )
                .into_response(),
        ),
        GitHubFault::ServerError => Some(
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"message": "Server Error"}))).into_response(),
        ),
        GitHubFault::Hang => {
            std::future::pending::<()>().await;
            None
        }
    }
}

/// A REST answer with GitHub's rate-limit headers.
fn api(state: &StandInState, status: StatusCode, body: Value) -> Response {
    let used = {
        let mut used = lock(&state.rate_used);
        *used += 1;
        *used
    };
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", "5000".to_owned()),
        (
            "x-ratelimit-remaining",
            5_000u64.saturating_sub(used).to_string(),
        ),
        ("x-ratelimit-used", used.to_string()),
        ("x-ratelimit-reset", (now() + 3_600).to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

fn message(state: &StandInState, status: StatusCode, text: &str) -> Response {
    api(
        state,
        status,
        json!({"message": text, "documentation_url": DOCS}),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        )),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

/// `redirect_uri` with `pairs` appended to its query.
fn with_query(base: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}

/// `GET /login/oauth/authorize` ("Authorizing OAuth apps", step 1).
async fn authorize(State(state): S, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = gate(&state, |h| h.authorize += 1).await {
        return r;
    }
    let Some(client_id) = q.get("client_id") else {
        return page(StatusCode::BAD_REQUEST, "Missing client_id", "");
    };
    let (known, users, auto) = {
        let f = lock(&state.fixtures);
        (
            f.apps.iter().any(|a| &a.client_id == client_id),
            f.users.clone(),
            f.auto_approve.clone(),
        )
    };
    if !known {
        return page(StatusCode::NOT_FOUND, "Application not found", "");
    }
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return page(StatusCode::BAD_REQUEST, "The redirect_uri is missing", "");
    };
    if url::Url::parse(redirect_uri).is_err() {
        return page(StatusCode::BAD_REQUEST, "The redirect_uri is not a URL", "");
    }
    let challenge = q.get("code_challenge").cloned();
    if challenge.is_some() && q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return page(
            StatusCode::BAD_REQUEST,
            "code_challenge_method must be S256",
            "",
        );
    }
    let state_param = q.get("state").cloned().unwrap_or_default();
    if q.contains_key("deny") {
        let to = with_query(
            redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The user has denied your application access.",
                ),
                (
                    "error_uri",
                    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
                ),
                ("state", &state_param),
            ],
        );
        return to.map_or_else(
            || page(StatusCode::BAD_REQUEST, "Bad redirect_uri", ""),
            |to| redirect(&to),
        );
    }
    let login = q.get("approve_as").cloned().or(auto);
    let Some(login) = login else {
        return picker(&q, &users);
    };
    if !users.iter().any(|u| u.login == login) {
        return page(StatusCode::BAD_REQUEST, "Unknown user", "");
    }
    let code = random_alphanumeric(20);
    let scopes = q
        .get("scope")
        .map(|s| {
            s.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    lock(&state.grants).insert(
        code.clone(),
        Grant {
            app: client_id.clone(),
            login,
            redirect_uri: Some(redirect_uri.clone()),
            challenge,
            scopes,
            expires_at: now() + 600,
        },
    );
    match with_query(redirect_uri, &[("code", &code), ("state", &state_param)]) {
        Some(to) => redirect(&to),
        None => page(StatusCode::BAD_REQUEST, "Bad redirect_uri", ""),
    }
}

/// The account picker: one link per user, and a cancel link.
fn picker(q: &HashMap<String, String>, users: &[StandInUser]) -> Response {
    let base = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            q.iter()
                .filter(|(k, _)| k.as_str() != "approve_as" && k.as_str() != "deny"),
        )
        .finish();
    let mut items = String::new();
    for user in users {
        let href = format!(
            "/login/oauth/authorize?{base}&approve_as={}",
            url::form_urlencoded::byte_serialize(user.login.as_bytes()).collect::<String>()
        );
        items.push_str(&format!(
            "<li><a class=\"user\" data-login=\"{login}\" href=\"{href}\">Sign in as {login}{name}</a></li>",
            login = escape(&user.login),
            href = escape(&href),
            name = user.name.as_deref().map(|n| format!(" ({})", escape(n))).unwrap_or_default(),
        ));
    }
    let cancel = escape(&format!("/login/oauth/authorize?{base}&deny=1"));
    page(
        StatusCode::OK,
        "Authorize application (GitHub stand-in)",
        &format!("<ul>{items}</ul><p><a id=\"cancel\" href=\"{cancel}\">Cancel</a></p>"),
    )
}

/// Parameters from a form body, a JSON body, then the query (GitHub takes all three).
fn params(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        serde_json::from_slice::<HashMap<String, Value>>(body)
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    }
}

/// `POST /login/oauth/access_token` ("Authorizing OAuth apps", step 2).
async fn access_token(
    State(state): S,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = gate(&state, |h| h.access_token += 1).await {
        return r;
    }
    let mut p = params(&headers, &body);
    for (k, v) in query {
        p.entry(k).or_insert(v);
    }
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let answer = |pairs: Vec<(&str, String)>| -> Response {
        if wants_json {
            let map: serde_json::Map<String, Value> = pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            axum::Json(Value::Object(map)).into_response()
        } else {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            (
                [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
                body,
            )
                .into_response()
        }
    };
    // GitHub answers these refusals with 200 and an `error` member.
    let error = |code: &str, description: &str| {
        answer(vec![
            ("error", code.to_owned()),
            ("error_description", description.to_owned()),
            ("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors".to_owned()),
        ])
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let secret_ok = lock(&state.fixtures)
        .apps
        .iter()
        .any(|a| a.client_id == get("client_id") && a.client_secret == get("client_secret"));
    if !secret_ok {
        return error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let bad_code = || {
        error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        )
    };
    // Codes are single use: taken out whatever happens next.
    let Some(grant) = lock(&state.grants).remove(get("code")) else {
        return bad_code();
    };
    if grant.app != get("client_id") || grant.expires_at <= now() {
        return bad_code();
    }
    if let (Some(expected), Some(given)) = (&grant.redirect_uri, p.get("redirect_uri"))
        && expected != given
    {
        return error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = &grant.challenge {
        let verifier = get("code_verifier");
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if verifier.is_empty() || &computed != challenge {
            return bad_code();
        }
    }
    let scopes: Vec<&str> = grant.scopes.iter().map(String::as_str).collect();
    let token = issue(
        &state,
        "gho_",
        Some(&grant.app),
        &grant.login,
        &scopes,
        None,
    );
    *lock(&state.last_issued) = Some(token.clone());
    answer(vec![
        ("access_token", token),
        ("scope", grant.scopes.join(",")),
        ("token_type", "bearer".to_owned()),
    ])
}

fn user_json(user: &StandInUser) -> Value {
    json!({
        "login": user.login,
        "id": user.id,
        "node_id": format!("U_{}", user.id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}", user.id),
        "type": "User",
        "site_admin": false,
        "name": user.name,
        "email": user.email,
    })
}

fn find_user(state: &StandInState, login: &str) -> Option<StandInUser> {
    lock(&state.fixtures)
        .users
        .iter()
        .find(|u| u.login == login)
        .cloned()
}

fn live(token: &IssuedToken) -> bool {
    token.expires_at.is_none_or(|at| at > now())
}

/// `POST /applications/{client_id}/token` ("Check a token").
async fn check_token(
    State(state): S,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = gate(&state, |h| h.check_token += 1).await {
        return r;
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let app = lock(&state.fixtures)
        .apps
        .iter()
        .find(|a| a.client_id == client_id)
        .cloned();
    let authorized = match (&app, credentials.as_deref().and_then(|c| c.split_once(':'))) {
        (Some(app), Some((id, secret))) => id == app.client_id && secret == app.client_secret,
        _ => false,
    };
    if !authorized {
        return message(&state, StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let access_token = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("access_token")
            .and_then(Value::as_str)
            .map(String::from)
    });
    let Some(access_token) = access_token else {
        return message(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"access_token\" wasn't supplied.",
        );
    };
    let issued = lock(&state.tokens).get(&access_token).cloned();
    let found = issued.filter(|t| t.app.as_deref() == Some(client_id.as_str()) && live(t));
    let (Some(issued), Some(app)) = (found, app) else {
        return message(&state, StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(user) = find_user(&state, &issued.login) else {
        return message(&state, StatusCode::NOT_FOUND, "Not Found");
    };
    let last_eight: String = access_token
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    api(
        &state,
        StatusCode::OK,
        json!({
            "id": 1,
            "url": format!("https://api.github.com/authorizations/1"),
            "scopes": issued.scopes,
            // GitHub echoes the token: the verifier must not keep this answer.
            "token": access_token,
            "token_last_eight": last_eight,
            "hashed_token": STANDARD.encode(Sha256::digest(access_token.as_bytes())),
            "app": {"client_id": app.client_id, "name": app.name, "url": "https://example.test"},
            "note": null,
            "note_url": null,
            "updated_at": "2026-01-01T00:00:00Z",
            "created_at": "2026-01-01T00:00:00Z",
            "fingerprint": null,
            "expires_at": issued.expires_at.map(crate::rfc3339::format),
            "user": user_json(&user),
            "installation": null,
        }),
    )
}

/// The token of `Authorization: Bearer x` or `token x`, if it is live (app tokens and PATs).
fn bearer(state: &StandInState, headers: &HeaderMap) -> Option<(IssuedToken, StandInUser)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))?;
    let issued = lock(&state.tokens).get(token).cloned().filter(live)?;
    let user = find_user(state, &issued.login)?;
    Some((issued, user))
}

fn reads_org(token: &IssuedToken) -> bool {
    token
        .scopes
        .iter()
        .any(|s| matches!(s.as_str(), "read:org" | "write:org" | "admin:org"))
}

/// `GET /user`.
async fn user(State(state): S, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&state, |h| h.user += 1).await {
        return r;
    }
    match bearer(&state, &headers) {
        Some((_, user)) => api(&state, StatusCode::OK, user_json(&user)),
        None => message(&state, StatusCode::UNAUTHORIZED, "Bad credentials"),
    }
}

#[derive(Deserialize)]
struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// One page of `items` with a `Link: rel="next"` when more follow.
fn paginate(
    state: &StandInState,
    headers: &HeaderMap,
    path: &str,
    items: Vec<Value>,
    q: &Page,
) -> Response {
    let per_page = q.per_page.unwrap_or(30).clamp(1, 100);
    let page = q.page.unwrap_or(1).max(1);
    let start = (page - 1).saturating_mul(per_page);
    let slice: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
    let mut response = api(state, StatusCode::OK, Value::Array(slice));
    if start + per_page < items.len()
        && let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok())
    {
        let next = format!(
            "<http://{host}/api/v3{path}?per_page={per_page}&page={}>; rel=\"next\"",
            page + 1
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

/// `GET /user/orgs`: private memberships only with `read:org`.
async fn user_orgs(State(state): S, headers: HeaderMap, Query(q): Query<Page>) -> Response {
    if let Some(r) = gate(&state, |h| h.user_orgs += 1).await {
        return r;
    }
    let Some((token, user)) = bearer(&state, &headers) else {
        return message(&state, StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    let orgs = if reads_org(&token) {
        user.orgs
            .iter()
            .enumerate()
            .map(|(i, o)| json!({"login": o, "id": 9_000 + i, "url": format!("https://api.github.com/orgs/{o}"), "description": null}))
            .collect()
    } else {
        Vec::new()
    };
    paginate(&state, &headers, "/user/orgs", orgs, &q)
}

/// `GET /user/teams`: needs `read:org`.
async fn user_teams(State(state): S, headers: HeaderMap, Query(q): Query<Page>) -> Response {
    if let Some(r) = gate(&state, |h| h.user_teams += 1).await {
        return r;
    }
    let Some((token, user)) = bearer(&state, &headers) else {
        return message(&state, StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    if !reads_org(&token) {
        return message(
            &state,
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
    }
    let teams = user
        .teams
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.split_once('/').map(|(org, slug)| (i, org, slug)))
        .map(|(i, org, slug)| {
            json!({"id": 7_000 + i, "node_id": format!("T_{i}"), "slug": slug, "name": slug,
                   "organization": {"login": org, "id": 9_000 + i}})
        })
        .collect();
    paginate(&state, &headers, "/user/teams", teams, &q)
}

async fn control_state(State(state): S) -> Response {
    let hits = *lock(&state.hits);
    let fault = *lock(&state.fault);
    axum::Json(json!({"hits": hits, "total": hits.total(), "fault": fault})).into_response()
}

#[derive(Deserialize)]
struct FaultBody {
    fault: GitHubFault,
}

async fn control_fault(State(state): S, axum::Json(body): axum::Json<FaultBody>) -> Response {
    *lock(&state.fault) = body.fault;
    control_state(State(state)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Oauth,
    AppUser,
    Pat,
}

#[derive(Deserialize)]
struct TokenBody {
    login: String,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    kind: Option<Kind>,
    expires_at: Option<i64>,
}

async fn control_tokens(State(state): S, axum::Json(body): axum::Json<TokenBody>) -> Response {
    if find_user(&state, &body.login).is_none() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unknown login"})),
        )
            .into_response();
    }
    let client = body
        .client_id
        .unwrap_or_else(|| super::GitHubStandIn::CLIENT_ID.to_owned());
    let scopes = body
        .scopes
        .unwrap_or_else(|| vec!["read:user".into(), "read:org".into()]);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = match body.kind.unwrap_or(Kind::Oauth) {
        Kind::Oauth => issue(
            &state,
            "gho_",
            Some(&client),
            &body.login,
            &scopes,
            body.expires_at,
        ),
        Kind::AppUser => issue(
            &state,
            "ghu_",
            Some(&client),
            &body.login,
            &scopes,
            body.expires_at,
        ),
        Kind::Pat => issue(&state, "ghp_", None, &body.login, &scopes, body.expires_at),
    };
    axum::Json(json!({"token": token})).into_response()
}

#[derive(Deserialize)]
struct AutoApprove {
    login: Option<String>,
}

async fn control_auto_approve(
    State(state): S,
    axum::Json(body): axum::Json<AutoApprove>,
) -> Response {
    lock(&state.fixtures).auto_approve = body.login;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Revoke {
    token: String,
}

async fn control_revoke(State(state): S, axum::Json(body): axum::Json<Revoke>) -> Response {
    lock(&state.tokens).remove(&body.token);
    StatusCode::NO_CONTENT.into_response()
}
