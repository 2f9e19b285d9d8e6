//! The main loop: sleep until the next entry, a mention, a reload or the stop; and the upkeep
//! it does on the way (the state kept small, the server remembered, the token's refusals).

use super::*;

/// Sleeps until `at`, or forever when there is no `at`.
pub(super) async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) fn spawn_watchdog(
    notifier: &Notifier,
    shutdown: &CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let interval = notifier.watchdog_interval()?;
    let notifier = notifier.clone();
    let shutdown = shutdown.clone();
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticks.tick() => notifier.watchdog(),
                () = shutdown.cancelled() => return,
            }
        }
    }))
}

impl Daemon {
    /// From the loaded state to the stop: the start-up checks, READY=1, the main loop, and
    /// what is saved on the way out.
    pub(super) async fn run(&mut self) -> Result<(), RunError> {
        // Connecting warned about a limit below the floor already, naming where it came from;
        // a dry run does not connect.
        if self.server.is_none() {
            if let Some(warning) = crate::text::compose::limit_warning(&self.counter()) {
                tracing::warn!("{warning}");
            }
        }
        self.remember_server()?;
        self.report_stale_adhoc();
        self.retry_failed_on_new_settings()?;
        self.resolve_pending_reply().await?;
        let mut watcher = None;
        self.watch_files(&mut watcher);
        self.notifier.ready();
        tracing::info!(posts = self.library.posts.len(), "ready");
        let result = self.main_loop(&mut watcher).await;
        let result = result.and_then(|()| self.save_unsaved_mentions());
        self.notifier.stopping();
        result
    }

    pub(super) fn counter(&self) -> Counter {
        match &self.server {
            Some(server) => server.limits().counter(),
            // A dry run fits as the offline commands do: for the server the daemon last saw.
            None => {
                crate::state::fit::offline_fit(&self.config, self.state.server.as_ref()).counter
            }
        }
    }

    pub(super) fn plan(&self, now: Timestamp, max_entries: usize) -> Plan {
        let input = PlanInput {
            posts: &self.library.posts,
            schedule: &self.config.schedule,
            seed: seed_for(&self.config.server.url),
            state: &self.state,
            now,
        };
        plan(&input, now + PLAN_AHEAD, max_entries)
    }

    pub(super) fn save(&self) -> Result<(), StateError> {
        if self.options.dry_run {
            return Ok(());
        }
        self.store.save(&self.state)
    }

    /// The server refused the token: posting and replying pause until it accepts it again.
    /// The ERROR line says how to fix it, once and then hourly (not at every retry).
    pub(super) fn token_refused(&mut self, reason: &str) {
        let log_now = self
            .token_refusal
            .as_ref()
            .is_none_or(|refusal| refusal.last_logged.elapsed() >= TOKEN_ERROR_EVERY);
        if log_now {
            tracing::error!(
                reason,
                "the server refuses the access token: posting and replying are paused until it accepts it again (retried with backoff, at most every 5 minutes). Fix: get a new token for this account and put it in {}, then restart perennial; check that it has the scopes `read:statuses`, `read:notifications`, `write:statuses`, `write:media` and `profile` (or `read:accounts`)",
                self.token_origin
            );
            self.token_refusal = Some(TokenRefusal {
                last_logged: tokio::time::Instant::now(),
            });
        }
        let line = "paused: the server refuses the access token (see the log)".to_string();
        if self.announced.as_deref() != Some(line.as_str()) {
            self.notifier.status(&line);
            self.announced = Some(line);
        }
    }

    /// A send went through: a refused token works again.
    pub(super) fn token_accepted(&mut self) {
        if self.token_refusal.take().is_some() {
            tracing::info!(
                "the server accepts the access token again; posting and replying resume"
            );
            self.announced = None;
        }
    }

    /// Keeps what was learnt of the server in the state, for the offline commands.
    pub(super) fn remember_server(&mut self) -> Result<(), RunError> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        let seen = server.seen(self.clock.now());
        let same = self.state.server.as_ref().is_some_and(|old| {
            crate::state::ServerSeen {
                at: seen.at,
                ..old.clone()
            } == seen
        });
        if !same && !self.options.dry_run {
            self.state.server = Some(seen);
            self.save()?;
        }
        Ok(())
    }

    /// Keeps the state in step with the posts folder before each plan: a renamed post keeps
    /// its record (logged), and what no plan needs any more is dropped
    /// ([`crate::state::prune`]), so the state stays bounded over the years. Saves when
    /// either changed something.
    pub(super) fn upkeep(&mut self, now: Timestamp) -> Result<(), RunError> {
        let renames = crate::state::follow_renames(&self.library, &mut self.state);
        for rename in &renames {
            tracing::info!(
                from = %rename.from,
                to = %rename.to,
                "renamed: {} → {}, keeping its history",
                rename.from,
                rename.to
            );
        }
        let pruned = crate::state::prune(&self.library, &mut self.state, now);
        if pruned.any() {
            tracing::debug!(
                history = pruned.history,
                failed = pruned.failed,
                "dropped state entries no plan needs any more"
            );
        }
        if !renames.is_empty() || pruned.any() {
            self.save()?;
        }
        Ok(())
    }

    pub(super) async fn main_loop(
        &mut self,
        watcher: &mut Option<crate::daemon::watch::ChangeWatcher>,
    ) -> Result<(), RunError> {
        loop {
            if self.controls.shutdown.is_cancelled() {
                return Ok(());
            }
            let wake = match self.step().await? {
                Next::Again => continue,
                Next::Stop => return Ok(()),
                Next::WakeAt(wake) => wake,
            };
            if self.wait(wake, watcher).await? == Next::Stop {
                return Ok(());
            }
        }
    }

    /// One step of the schedule: the post in flight tried again when its time has come, else
    /// everything due sent; then when to wake (while a post waits to be tried again,
    /// mentions are answered meanwhile).
    async fn step(&mut self) -> Result<Next, RunError> {
        let post_in_flight = self.state.pending.is_some() && !self.options.dry_run;
        if !post_in_flight {
            return self.send_due().await;
        }
        let retry_at = self.post_retry.as_ref().map(|retry| retry.at);
        match retry_at {
            Some(at) if at > tokio::time::Instant::now() => Ok(Next::WakeAt(at)),
            _ => {
                self.try_pending().await?;
                Ok(Next::Again)
            }
        }
    }

    /// Plans, sends every entry that is due, records the check, and says when the next entry
    /// falls due.
    async fn send_due(&mut self) -> Result<Next, RunError> {
        let now = self.clock.now();
        self.upkeep(now)?;
        let plan = self.plan(now, ENTRIES_AHEAD);
        tracing::debug!(%now, entries = plan.entries.len(), first = ?plan.entries.first().map(|e| e.at), "planned");
        self.report_missed(&plan);
        for entry in &plan.entries {
            if !self.to_send(entry, now) {
                continue;
            }
            if !self.handle(entry).await? {
                return Ok(Next::Again);
            }
            if self.controls.shutdown.is_cancelled() {
                return Ok(Next::Stop);
            }
        }
        // Everything due is dealt with: the slots missed before now are skipped. Recording
        // that changes only slots at or before `now`, so the same plan also gives the next
        // entry.
        let now = self.clock.now();
        let upcoming = self.plan(now, ENTRIES_AHEAD);
        // An entry that fell due while a post was being sent (a retry, a slow server) is
        // dealt with now: recording the check would skip it as missed.
        if upcoming
            .entries
            .iter()
            .any(|entry| self.to_send(entry, now))
        {
            return Ok(Next::Again);
        }
        let before = self.state.rotation.clone();
        record_checked(&mut self.state, &upcoming, now);
        if self.state.rotation.last_slot != before.last_slot || before.checked.is_none() {
            self.save()?;
        }
        let ahead: Vec<&Entry> = upcoming
            .entries
            .iter()
            .filter(|entry| !entry.is_due(now))
            .collect();
        if self.token_refusal.is_none() {
            self.announce(&ahead);
        }
        if self.options.once {
            if self.mentions.is_some() {
                self.catch_up().await?;
            }
            return Ok(Next::Stop);
        }
        let sleep = ahead.first().map_or(MAX_SLEEP, |entry| {
            clock::until(now, entry.at).min(MAX_SLEEP)
        });
        Ok(Next::WakeAt(instant_after(sleep)))
    }

    /// Answers mentions until `wake` (without planning again: the plan only changes when the
    /// wake time comes, or on a reload), a reload, or the stop.
    async fn wait(
        &mut self,
        wake: tokio::time::Instant,
        watcher: &mut Option<crate::daemon::watch::ChangeWatcher>,
    ) -> Result<Next, RunError> {
        loop {
            let reading_stream = self
                .mentions
                .as_ref()
                .is_some_and(|run| run.stream.is_some() && !run.paused());
            tokio::select! {
                () = tokio::time::sleep_until(wake) => return Ok(Next::Again),
                () = self.controls.shutdown.cancelled() => return Ok(Next::Stop),
                () = self.controls.reload.notified() => {
                    tracing::info!("reload requested");
                    self.reload(watcher)?;
                    return Ok(Next::Again);
                }
                changes = async {
                    match watcher.as_mut() {
                        Some(watcher) => watcher.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!(files = changes.paths().len(), "files changed; reloading");
                    self.reload(watcher)?;
                    return Ok(Next::Again);
                }
                () = sleep_until_some(self.mention_wake()) => self.mention_timer().await?,
                event = next_stream_event(&mut self.mentions), if reading_stream => {
                    self.on_stream_event(event).await?;
                }
            }
            if self.controls.shutdown.is_cancelled() {
                return Ok(Next::Stop);
            }
        }
    }

    /// When the mentions want the daemon: a reply to try again, else the next poll (not
    /// before a pause ends).
    fn mention_wake(&self) -> Option<tokio::time::Instant> {
        self.mentions.as_ref().map(|run| {
            let at = run.retry.map_or(run.next_poll, |(at, _)| at);
            match run.paused_until {
                Some(paused) if run.retry.is_none() => at.max(paused),
                _ => at,
            }
        })
    }
}

/// What the main loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Plan again now.
    Again,
    /// Sleep (answering mentions) until then.
    WakeAt(tokio::time::Instant),
    /// Stop.
    Stop,
}
