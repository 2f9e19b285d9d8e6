//! Reloading the config and the posts on SIGHUP or a change under `posts/`, and telling
//! `perennial reload` (and systemd) when a reload is done.

use super::*;

impl ReloadMarker {
    /// The reload that began when `hangups` SIGHUPs had arrived is finished.
    pub(super) fn done(&mut self, store: &StateStore, hangups: u64) {
        if hangups <= self.written {
            return;
        }
        let path = store.dir().join(RELOADED_FILE);
        let temporary = store.dir().join(format!(".{RELOADED_FILE}.new"));
        let written = std::fs::write(&temporary, format!("{} {hangups}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&temporary, &path));
        match written {
            Ok(()) => self.written = hangups,
            Err(error) => tracing::warn!(
                "could not write {}: {error}; `systemctl reload` waits for it and will time out",
                path.display()
            ),
        }
    }
}

impl Daemon {
    /// Reloads the config (a broken one keeps the old, and says so) and the posts (broken
    /// files are reported and skipped), watching the files anew in between (so a change made
    /// while loading is seen by the new watch). Everything applies at once except `[server]`
    /// and `[state]`, which need a restart (a warning says so).
    pub(super) fn reload(
        &mut self,
        watcher: &mut Option<crate::daemon::watch::ChangeWatcher>,
    ) -> Result<(), RunError> {
        // Every SIGHUP counted so far is covered by this reload, whatever woke it.
        let hangups = self.controls.hangups.load(Ordering::SeqCst);
        self.notifier.reloading();
        match Config::load(&self.config_path) {
            Ok(config) => {
                if self.last_config_problems.take().is_some() {
                    tracing::info!("the configuration's problems are fixed");
                }
                if config.server != self.config.server {
                    tracing::warn!(
                        "[server] changed: restart perennial to use the new server settings (until then it keeps the old ones)"
                    );
                }
                // `$STATE_DIRECTORY` (systemd) wins over the config's folder.
                if config.state.dir != self.config.state.dir && !self.state_dir_from_env {
                    tracing::warn!(
                        "[state] dir changed: restart perennial to use the new state folder (until then it keeps {})",
                        self.store.dir().display()
                    );
                }
                if config.posts.dir != self.config.posts.dir {
                    tracing::info!(
                        from = %self.config.posts.dir.display(),
                        to = %config.posts.dir.display(),
                        "[posts] dir changed: reading and watching the new folder"
                    );
                }
                let mentions_were = self.config.mentions.enabled;
                self.config = config;
                self.follow_mentions_setting(mentions_were)?;
            }
            Err(errors) => {
                let problems = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                // The watcher and a SIGHUP for one edit see the same problems: say them once.
                if self.last_config_problems.as_deref() != Some(problems.as_str()) {
                    for error in &errors {
                        tracing::error!("{error}");
                    }
                    tracing::error!(
                        "the configuration has problems; keeping the one loaded before"
                    );
                    self.last_config_problems = Some(problems);
                } else {
                    tracing::debug!("the configuration still has the same problems");
                }
            }
        }
        self.watch_files(watcher);
        self.library = load_posts(
            &self.config,
            media_limits(&self.config, &self.state, self.server.as_deref()),
        );
        self.retry_failed_on_new_settings()?;
        tracing::info!(posts = self.library.posts.len(), "reloaded");
        self.notifier.ready();
        if !self.options.dry_run {
            self.reloaded.done(&self.store, hangups);
        }
        Ok(())
    }
    /// Starts watching the posts folder the config names now, and the config, replacing the
    /// watcher in `watcher`: a new watch after every reload follows a posts folder that was
    /// deleted and created again, swapped in by a rename, or moved by `[posts] dir`.
    pub(super) fn watch_files(&self, watcher: &mut Option<crate::daemon::watch::ChangeWatcher>) {
        if !self.watching {
            return;
        }
        match crate::daemon::watch::watch(&self.config.posts.dir, &self.config_path) {
            Ok(new) => *watcher = Some(new),
            Err(error) => {
                tracing::warn!(%error, "not watching for file changes");
                *watcher = None;
            }
        }
    }
}
