//! The OpenAI-compatible [`ModelProvider`]: one streaming `POST {base_url}/chat/completions` per
//! turn, read as server-sent events and mapped to [`ModelDelta`]s as the bytes arrive.
//!
//! async-openai 0.43 supplies the configuration (`OpenAIConfig` built explicitly with
//! `with_api_base`/`with_api_key`, which gives the URL and the `Authorization: Bearer` header) and
//! the typed request. The response is read here rather than through `Client::chat()`'s stream,
//! because three things this provider must do are out of reach there (read in
//! `async-openai-0.43.0/src/client.rs` and `src/executor.rs`):
//! - its SSE stream ends the same way on `data: [DONE]` and on a connection closed mid-answer,
//!   so a truncated answer would pass as a complete one (we report `model_protocol_error`);
//! - every request goes through its `OpenAIRetryLayer`, whose retry count and backoff are not
//!   configurable without the `middleware` feature, and which could retry behind our timeouts;
//! - an error body that is not OpenAI's JSON shape loses its HTTP status, so a 401 from a proxy
//!   could not be told from a 400.
//!
//! Timeouts: connect (reqwest), first byte (response head and first body bytes), idle (between
//! body chunks). Never a total timeout: long answers are fine, the run's max duration bounds
//! them. Retries (429, 5xx, connection errors) happen only before the first byte, so nothing a
//! client already saw is ever repeated.

use std::time::Duration;

use async_openai::config::{Config, OpenAIConfig};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::chunk::{ChunkMapper, in_band_error_event, truncate};
use super::config::{MAX_RETRY_AFTER, OpenAiConfig};
use super::messages::build_request;
use super::sse::{SseDecoder, SseError};
use crate::model::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};

/// The name in logs, metrics and `TokenUsage.provider`.
const PROVIDER_NAME: &str = "openai";

/// How much of an error body is read for the log.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// A model behind any OpenAI-compatible chat-completions endpoint.
pub struct OpenAiProvider {
    config: OpenAiConfig,
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
}

impl std::fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config's Debug masks the key; the headers (which hold it) are left out.
        f.debug_struct("OpenAiProvider")
            .field("config", &self.config)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl OpenAiProvider {
    /// Builds the provider: validates `config`, derives the endpoint URL and headers through
    /// async-openai's `OpenAIConfig` (every field set from our config, so no `OPENAI_*`
    /// variable of the process changes anything), and builds a rustls reqwest client with the
    /// connect timeout. `HTTPS_PROXY`/`NO_PROXY` are honoured (reqwest's default).
    ///
    /// # Errors
    /// `ModelError::Failed` with the reason when the configuration is unusable.
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        config
            .validate()
            .map_err(|e| ModelError::Failed(e.to_string()))?;
        // `OpenAIConfig::default()` (like `new()`) fills its fields from OPENAI_BASE_URL,
        // OPENAI_API_KEY, OPENAI_ORG_ID and OPENAI_PROJECT_ID; all four are overwritten here,
        // so only our configuration counts (DESIGN "Outbound HTTP").
        let openai = OpenAIConfig::default()
            .with_api_base(config.base_url_trimmed())
            .with_api_key(config.api_key.expose())
            .with_org_id("")
            .with_project_id("");
        let url = openai.url("/chat/completions");
        let mut headers = HeaderMap::new();
        if !config.api_key.is_empty() {
            let mut bearer = openai
                .headers()
                .get(AUTHORIZATION)
                .cloned()
                .ok_or_else(|| {
                    ModelError::Failed("async-openai built no Authorization header".into())
                })?;
            // Keeps the key out of reqwest/hyper debug output.
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .user_agent(concat!("agui-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ModelError::Failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            config,
            http,
            url,
            headers,
        })
    }

    /// The configuration this provider was built from.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Sends the request, retrying 429, 5xx and connection errors with backoff, until a
    /// successful response head arrives. Returns it with the first-byte deadline of the attempt
    /// that succeeded.
    async fn send(&self, body: Bytes) -> Result<(reqwest::Response, Instant), ModelError> {
        let first_byte = Duration::from_secs(self.config.first_byte_timeout_secs);
        let mut attempt: u32 = 0;
        loop {
            let deadline = Instant::now() + first_byte;
            let request = self
                .http
                .post(&self.url)
                .headers(self.headers.clone())
                .body(body.clone());
            let (error, retry_after) = match tokio::time::timeout_at(deadline, request.send()).await
            {
                Err(_) => {
                    return Err(ModelError::Timeout(format!(
                        "no response head within {}s",
                        first_byte.as_secs()
                    )));
                }
                Ok(Err(e)) if e.is_timeout() => {
                    return Err(ModelError::Timeout(format!("connecting: {e}")));
                }
                Ok(Err(e)) if e.is_connect() => {
                    (ModelError::Unavailable(format!("connecting: {e}")), None)
                }
                Ok(Err(e)) => {
                    return Err(ModelError::Unavailable(format!("request failed: {e}")));
                }
                Ok(Ok(response)) if response.status().is_success() => {
                    return Ok((response, deadline));
                }
                Ok(Ok(response)) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let detail = format!("HTTP {status}: {}", error_body(response, deadline).await);
                    match status {
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(ModelError::Unauthorized(detail));
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            (ModelError::RateLimited(detail), retry_after)
                        }
                        s if s.is_server_error() => (ModelError::Unavailable(detail), retry_after),
                        _ => return Err(ModelError::Failed(detail)),
                    }
                }
            };
            if attempt >= self.config.max_retries {
                return Err(error);
            }
            let backoff = Duration::from_millis(self.config.retry_base_delay_ms)
                .saturating_mul(2_u32.saturating_pow(attempt));
            let delay = retry_after.unwrap_or(backoff).min(MAX_RETRY_AFTER);
            attempt += 1;
            tracing::warn!(
                provider = PROVIDER_NAME,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                %error,
                "model request failed before the first byte; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[async_trait]
impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let body = serde_json::to_vec(&build_request(&self.config, &request))
            .map_err(|e| ModelError::Failed(format!("cannot encode the request: {e}")))?;
        let (response, deadline) = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(ModelError::Failed("run cancelled before the model answered".into()));
            }
            sent = self.send(Bytes::from(body)) => sent?,
        };
        let idle = Duration::from_secs(self.config.idle_timeout_secs);
        let mapper = ChunkMapper::new(PROVIDER_NAME, self.config.model.trim());
        Ok(read_events(response, deadline, idle, cancel, mapper).boxed())
    }
}

/// The response body as deltas. The stream owns the response: dropping it (or `cancel`
/// firing) drops the response, which closes the connection and aborts the request upstream.
fn read_events(
    mut response: reqwest::Response,
    first_byte_deadline: Instant,
    idle: Duration,
    cancel: CancellationToken,
    mut mapper: ChunkMapper,
) -> impl futures::Stream<Item = Result<ModelDelta, ModelError>> + Send {
    async_stream::stream! {
        let mut decoder = SseDecoder::default();
        let mut started = false;
        loop {
            let deadline = if started { Instant::now() + idle } else { first_byte_deadline };
            let read = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    // Close the connection now, not when the consumer next polls or drops us.
                    drop(response);
                    yield Err(ModelError::Failed("run cancelled while the model streamed".into()));
                    return;
                }
                read = tokio::time::timeout_at(deadline, response.chunk()) => read,
            };
            let bytes = match read {
                Err(_) if started => {
                    yield Err(ModelError::Timeout(format!(
                        "no data for {}s between chunks", idle.as_secs()
                    )));
                    return;
                }
                Err(_) => {
                    yield Err(ModelError::Timeout("no body data before the first-byte deadline".into()));
                    return;
                }
                Ok(Err(e)) => {
                    yield Err(ModelError::Unavailable(format!("reading the stream failed: {e}")));
                    return;
                }
                Ok(Ok(None)) => {
                    let partial = if decoder.has_partial() { " (mid-event)" } else { "" };
                    yield Err(ModelError::Protocol(format!("stream ended without [DONE]{partial}")));
                    return;
                }
                Ok(Ok(Some(bytes))) => bytes,
            };
            started = true;
            let events = match decoder.push(&bytes) {
                Ok(events) => events,
                Err(SseError::NotUtf8) => {
                    yield Err(ModelError::Protocol("stream is not UTF-8".into()));
                    return;
                }
                Err(SseError::TooLarge) => {
                    yield Err(ModelError::Protocol("stream event too large".into()));
                    return;
                }
            };
            let mut out = Vec::new();
            let mut end: Option<Result<(), ModelError>> = None;
            for event in events {
                let result = if event.data.trim() == "[DONE]" {
                    Some(mapper.finish(&mut out))
                } else if event.event == "error" {
                    Some(Err(in_band_error_event(&event.data)))
                } else {
                    mapper.push(&event.data, &mut out).err().map(Err)
                };
                if result.is_some() {
                    end = result;
                    break;
                }
            }
            for delta in out {
                yield Ok(delta);
            }
            match end {
                None => {}
                // `[DONE]`: the answer is complete; anything after it is ignored.
                Some(Ok(())) => return,
                Some(Err(error)) => {
                    yield Err(error);
                    return;
                }
            }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from model APIs and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// At most [`ERROR_BODY_LIMIT`] bytes of an error response, for the log only.
async fn error_body(mut response: reqwest::Response, deadline: Instant) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    truncate(&String::from_utf8_lossy(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_bad_config_and_hides_the_key() {
        let err =
            OpenAiProvider::new(OpenAiConfig::new("file:///x", "sk-secret", "m")).unwrap_err();
        assert_eq!(err.code(), "model_error");
        let provider = OpenAiProvider::new(OpenAiConfig::new(
            "http://127.0.0.1:9/v1/",
            "sk-secret",
            "m",
        ))
        .unwrap();
        assert_eq!(provider.url, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(
            provider
                .headers
                .get(AUTHORIZATION)
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer sk-secret"
        );
        assert!(!format!("{provider:?}").contains("sk-secret"));
        let keyless =
            OpenAiProvider::new(OpenAiConfig::new("http://127.0.0.1:9/v1", "", "m")).unwrap();
        assert!(keyless.headers.get(AUTHORIZATION).is_none());
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
