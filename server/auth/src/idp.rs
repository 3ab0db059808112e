//! A tiny OpenID provider on loopback: a discovery document and a JWKS, with switches for the
//! faults tests need. Shared by [`crate::dev::DevIssuer`] and `testing::TestIdp`. It also has an
//! RFC 7662 introspection endpoint for opaque tokens that `TestIdp` registers (the dev issuer
//! registers none, so every token is inactive there).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Switchable behaviour. Discovery and JWKS both honour `down` and `delay`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    /// Refuse new connections and answer 503 on open ones.
    pub down: bool,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer the JWKS with a non-JSON body.
    pub garbage: bool,
    /// Answer the JWKS with `{"keys": []}`.
    pub empty: bool,
    /// Send `Cache-Control: max-age=N` with the JWKS.
    pub max_age: Option<u64>,
    /// Answer the JWKS with this status and no body.
    pub jwks_status: Option<u16>,
    /// Put this `issuer` in the discovery document instead of the real one.
    pub discovery_issuer: Option<String>,
    /// Put this `jwks_uri` in the discovery document instead of the real one.
    pub discovery_jwks_uri: Option<String>,
    /// Answer introspection with this status and no body.
    pub introspection_status: Option<u16>,
}

/// The client that may call the introspection endpoint (HTTP Basic).
pub(crate) const INTROSPECTION_CLIENT: (&str, &str) = ("agui-introspector", "introspector-secret");

pub(crate) struct IdpState {
    pub issuer: String,
    discovery_path: String,
    jwks_path: String,
    introspection_path: String,
    pub jwks_url: String,
    pub introspection_url: String,
    /// Opaque token → its introspection answer (without `active`). A std Mutex: never held
    /// across an await.
    pub opaque: Mutex<std::collections::HashMap<String, Value>>,
    pub introspection_hits: AtomicU64,
    /// Published JWKS entries. A std Mutex: never held across an await.
    pub published: Mutex<Vec<Value>>,
    pub faults: Mutex<Faults>,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    refuse: Arc<AtomicBool>,
    pub discovery_hits: AtomicU64,
    pub jwks_hits: AtomicU64,
}

impl IdpState {
    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn published(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(feature = "testing")]
    pub fn set_down(&self, down: bool) {
        self.faults().down = down;
        self.refuse.store(down, Ordering::SeqCst);
    }
}

/// The running server; stops when dropped.
pub(crate) struct IdpServer {
    pub state: Arc<IdpState>,
    pub addr: SocketAddr,
    _stop: DropGuard,
}

/// Binds `bind` (loopback only) and serves the issuer under `issuer_path` (e.g. `""`,
/// `"/realms/demo"`, `"/"` for an Auth0-style trailing slash).
pub(crate) async fn start(
    bind: SocketAddr,
    issuer_path: &str,
    keys: Vec<Value>,
) -> std::io::Result<IdpServer> {
    if !bind.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the local issuer binds loopback only",
        ));
    }
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let issuer = format!("http://{addr}{issuer_path}");
    let base = format!("http://{addr}{}", issuer_path.trim_end_matches('/'));
    let prefix = issuer_path.trim_end_matches('/');
    let refuse = Arc::new(AtomicBool::new(false));
    let state = Arc::new(IdpState {
        issuer,
        discovery_path: format!("{prefix}/.well-known/openid-configuration"),
        jwks_path: format!("{prefix}/jwks"),
        introspection_path: format!("{prefix}/introspect"),
        jwks_url: format!("{base}/jwks"),
        introspection_url: format!("{base}/introspect"),
        opaque: Mutex::new(std::collections::HashMap::new()),
        introspection_hits: AtomicU64::new(0),
        published: Mutex::new(keys),
        faults: Mutex::new(Faults::default()),
        refuse: refuse.clone(),
        discovery_hits: AtomicU64::new(0),
        jwks_hits: AtomicU64::new(0),
    });
    let router = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    let stop = CancellationToken::new();
    let listener = RefusingListener {
        inner: listener,
        refuse,
    };
    let shutdown = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(IdpServer {
        state,
        addr,
        _stop: stop.drop_guard(),
    })
}

async fn handle(State(state): State<Arc<IdpState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let is_discovery = path == state.discovery_path;
    let is_jwks = path == state.jwks_path;
    let is_introspection = path == state.introspection_path && request.method() == Method::POST;
    if !is_discovery && !is_jwks && !is_introspection {
        return StatusCode::NOT_FOUND.into_response();
    }
    let counter = if is_discovery {
        &state.discovery_hits
    } else if is_jwks {
        &state.jwks_hits
    } else {
        &state.introspection_hits
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let faults = state.faults().clone();
    if let Some(delay) = faults.delay {
        tokio::time::sleep(delay).await;
    }
    if faults.down {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONNECTION, "close")],
            "down",
        )
            .into_response();
    }
    if is_introspection {
        return introspect(&state, &faults, request).await;
    }
    if is_discovery {
        let issuer = faults
            .discovery_issuer
            .unwrap_or_else(|| state.issuer.clone());
        return axum::Json(json!({
            "issuer": issuer,
            "jwks_uri": faults.discovery_jwks_uri.unwrap_or_else(|| state.jwks_url.clone()),
            "introspection_endpoint": state.introspection_url,
            "authorization_endpoint": format!("{}/authorize", state.issuer.trim_end_matches('/')),
            "token_endpoint": format!("{}/token", state.issuer.trim_end_matches('/')),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }))
        .into_response();
    }
    if let Some(status) = faults.jwks_status {
        return StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    let mut response = if faults.garbage {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>maintenance</html>",
        )
            .into_response()
    } else if faults.empty {
        axum::Json(json!({"keys": []})).into_response()
    } else {
        axum::Json(json!({"keys": *state.published()})).into_response()
    };
    if let Some(age) = faults.max_age
        && let Ok(value) = HeaderValue::from_str(&format!("public, max-age={age}"))
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// RFC 7662 §2: Basic-authenticated POST with a form `token`; the registered answer with
/// `active: true`, or `{"active": false}`.
async fn introspect(state: &IdpState, faults: &Faults, request: Request) -> Response {
    if let Some(status) = faults.introspection_status {
        return StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    let expected = {
        use base64::Engine;
        let (id, secret) = INTROSPECTION_CLIENT;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 16 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    };
    let answer = state
        .opaque
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&token)
        .cloned();
    match answer {
        Some(Value::Object(mut map)) => {
            map.entry("active").or_insert(json!(true));
            axum::Json(Value::Object(map)).into_response()
        }
        _ => axum::Json(json!({"active": false})).into_response(),
    }
}

/// Drops new connections while `refuse` is set: to a client, an unreachable issuer.
struct RefusingListener {
    inner: TcpListener,
    refuse: Arc<AtomicBool>,
}

impl axum::serve::Listener for RefusingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) if self.refuse.load(Ordering::SeqCst) => drop(stream),
                Ok(pair) => return pair,
                // Out of descriptors and the like: back off briefly, as axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
