//! Connecting at start-up: readiness does not wait for the network, a reload is honoured
//! while it cannot be reached, and only a refused token ends the wait.

use super::*;

/// Connects, retrying while the server cannot be reached.
///
/// Readiness does not wait for the server: when the first try cannot reach it, READY=1 goes
/// out with `STATUS=waiting for the server…`. A server that is down for hours is ordinary,
/// and a unit held "activating" would hold `multi-user.target` at boot, make `systemctl
/// start` block, and be restarted by `TimeoutStartSec=` for nothing. A server that answers
/// and refuses the token still fails the start (exit 78), before READY=1.
pub(super) async fn connect(
    options: ServerOptions,
    token: crate::network::token::Token,
    controls: &Controls,
    notifier: &Notifier,
    connecting: &mut Connecting,
) -> Result<Connected, ConnectError> {
    loop {
        match crate::network::connect(options.clone(), token.clone()).await {
            Ok(server) => {
                let limits = server.limits();
                tracing::info!(
                    account = %server.account().acct,
                    software = ?limits.software,
                    max_characters = limits.max_characters,
                    "connected"
                );
                return Ok(Connected::Server(server));
            }
            Err(error) if error.retryable() => {
                let wait = crate::network::retry::wait(error.retry_after(), connecting.attempt);
                connecting.attempt += 1;
                tracing::warn!(%error, wait_seconds = wait.as_secs(), "cannot reach the server; trying again");
                notifier.status(&format!("waiting for the server: {error}"));
                if !connecting.ready {
                    notifier.ready();
                    connecting.ready = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = controls.shutdown.cancelled() => return Ok(Connected::Stopped),
                    () = controls.reload.notified() => {
                        tracing::info!("reload requested");
                        return Ok(Connected::Reload);
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// What connecting at start-up needs besides the config and the token.
pub(super) struct Waiting<'a> {
    pub(super) config_path: &'a Path,
    pub(super) env: &'a Environment,
    pub(super) controls: &'a Controls,
    pub(super) store: &'a StateStore,
    pub(super) token_sources: &'a TokenSources,
}

/// What start-up reached.
pub(super) enum Reached {
    Network(Arc<dyn Network>),
    /// No network: a dry run without a token, with mentions off, or whose server did not
    /// answer.
    Offline,
    /// Told to stop while waiting for the server.
    Stopped,
}

impl Waiting<'_> {
    /// The network this run talks to. The daemon waits for it as long as it takes; a dry run
    /// with a token connects once, to read mentions (and the server's limits) and show the
    /// replies it would send, and never waits for an unreachable server.
    pub(super) async fn network(
        &self,
        config: &mut Config,
        token: Option<&crate::network::token::Token>,
        dry_run: bool,
        reloaded: &mut ReloadMarker,
    ) -> Result<Reached, RunError> {
        match (token, dry_run) {
            (Some(token), false) => Ok(match self.connect(config, token, reloaded).await? {
                Some(server) => Reached::Network(server),
                None => Reached::Stopped,
            }),
            (Some(token), true) if config.mentions.enabled => {
                match crate::network::connect(server_options(config, self.env), token.clone()).await
                {
                    Ok(server) => Ok(Reached::Network(server)),
                    Err(error) => {
                        self.env
                            .printer
                            .show(Report::Note(format!("dry run: mentions are off: {error}")));
                        Ok(Reached::Offline)
                    }
                }
            }
            _ => Ok(Reached::Offline),
        }
    }

    /// Connects, waiting as long as the server cannot be reached; `None` when told to stop
    /// meanwhile. A reload while it waits reads the config again (a broken one keeps the one
    /// loaded; [server] and [state], as in any reload, need a restart); the posts are read
    /// once connected.
    pub(super) async fn connect(
        &self,
        config: &mut Config,
        token: &crate::network::token::Token,
        reloaded: &mut ReloadMarker,
    ) -> Result<Option<Arc<dyn Network>>, RunError> {
        let mut connecting = Connecting::default();
        loop {
            let connected = connect(
                server_options(config, self.env),
                token.clone(),
                self.controls,
                &self.env.notifier,
                &mut connecting,
            )
            .await
            .map_err(|error| token_refused(error, self.token_sources))?;
            match connected {
                Connected::Server(server) => return Ok(Some(server)),
                Connected::Stopped => return Ok(None),
                Connected::Reload => self.reload(config, reloaded),
            }
        }
    }

    fn reload(&self, config: &mut Config, reloaded: &mut ReloadMarker) {
        let hangups = self.controls.hangups.load(Ordering::SeqCst);
        self.env.notifier.reloading();
        match Config::load(self.config_path) {
            Ok(mut new) => {
                if new.server != config.server || new.state.dir != config.state.dir {
                    tracing::warn!(
                        "[server] or [state] changed: restart perennial to use them (until then it keeps the old ones)"
                    );
                }
                new.server = config.server.clone();
                new.state = config.state.clone();
                *config = new;
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!("{error}");
                }
                tracing::error!("the configuration has problems; keeping the one loaded before");
            }
        }
        tracing::info!("reloaded");
        self.env.notifier.ready();
        reloaded.done(self.store, hangups);
    }
}
