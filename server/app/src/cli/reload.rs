//! SIGHUP: re-read the configuration (file, environment, flags, exactly as at start-up),
//! validate it, and swap the API-key table, so a key can be added or revoked without a restart.
//! Nothing else is reloaded (the log line says so). A configuration that does not load or
//! validate changes nothing: the previous keys stay and the error is logged, without quoting the
//! file (it may hold secrets).

use agui_auth::Authenticator;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::ConfigError;

/// Reloads the API keys on every SIGHUP until `shutdown`.
pub(crate) async fn api_keys_on_sighup(
    args: ServeArgs,
    auth: Authenticator,
    shutdown: CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; API keys reload only on restart");
                return;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hangup.recv() => if got.is_none() { return },
            }
            reload(&args, &auth);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (args, auth);
        shutdown.cancelled().await;
    }
}

/// One reload.
pub(crate) fn reload(args: &ServeArgs, auth: &Authenticator) {
    let loaded = args
        .load()
        .and_then(|config| config.validate().map(|()| config));
    match loaded {
        Ok(config) => match auth.replace_api_keys(&config.auth.api_keys) {
            Ok(keys) => tracing::info!(
                keys,
                "SIGHUP: API keys reloaded (other settings take effect on restart)"
            ),
            Err(error) => tracing::error!(
                %error,
                "SIGHUP: the new API keys are invalid; keeping the previous ones"
            ),
        },
        Err(ConfigError::Parse { path, .. }) => tracing::error!(
            path = %path.display(),
            "SIGHUP: the config file is not valid (run agui-server check-config); keeping the previous API keys"
        ),
        Err(error) => tracing::error!(
            %error,
            "SIGHUP: the config does not load; keeping the previous API keys"
        ),
    }
}
