//! The daemon's mentions: the stream and the catch-up, each mention decided
//! ([`crate::plan::mentions`]) and answered through [`crate::daemon::mentions`], with the
//! backoff and the pauses that keep one fault from silencing the rest.

use super::*;

impl MentionsRun {
    /// Starts answering mentions: the stream (not with `--once`) and a catch-up at once.
    pub(super) fn start(
        server: &dyn Network,
        state: &State,
        options: &RunOptions,
        controls: &Controls,
    ) -> MentionsRun {
        MentionsRun {
            stream: (!options.once).then(|| server.listen(controls.shutdown.child_token())),
            first_start: state.mentions.cursor.is_none() && state.mentions.handled.is_empty(),
            next_poll: tokio::time::Instant::now(),
            retry: None,
            unsaved: false,
            refusals: 0,
            paused_until: None,
            catch_up_failures: 0,
        }
    }

    pub(super) fn paused(&self) -> bool {
        self.retry.is_some()
            || self
                .paused_until
                .is_some_and(|at| at > tokio::time::Instant::now())
    }
}

/// The next event of the mention stream (never, when there is none).
pub(super) async fn next_stream_event(mentions: &mut Option<MentionsRun>) -> Option<StreamEvent> {
    match mentions.as_mut().and_then(|run| run.stream.as_mut()) {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Saves the skipped mentions not saved yet, and folds the mentions journal into the
    /// state file (at shutdown, and when mentions are turned off): a clean stop leaves
    /// everything in `state.json`.
    pub(super) fn save_unsaved_mentions(&mut self) -> Result<(), RunError> {
        let unsaved = self
            .mentions
            .as_mut()
            .is_some_and(|run| std::mem::take(&mut run.unsaved));
        if unsaved || self.store.journaled() > 0 {
            self.save()?;
        }
        Ok(())
    }

    pub(super) fn replier(&self) -> Option<Replier<'_>> {
        Some(Replier {
            network: self.server.as_deref()?,
            store: &self.store,
            clock: self.clock.as_ref(),
            checkpoint: self.checkpoint.as_ref(),
            language: Some(self.config.posts.language.as_str()),
        })
    }

    /// The pending replies left by an earlier run are resolved first.
    pub(super) async fn resolve_pending_reply(&mut self) -> Result<(), RunError> {
        let pending = &self.state.mentions.pending;
        if pending.is_empty() {
            return Ok(());
        }
        let accts = pending
            .iter()
            .map(|intent| format!("@{}", intent.acct))
            .collect::<Vec<_>>()
            .join(", ");
        if self.options.dry_run {
            self.note(format!(
                "dry run: a reply to {accts} is in flight from an earlier run; the daemon would check it first"
            ));
            return Ok(());
        }
        let Some(run) = &mut self.mentions else {
            tracing::warn!(replies = pending.len(), "replies were in flight when the last run stopped, but mentions are off now; they stay pending");
            return Ok(());
        };
        tracing::info!(to = %accts, "replies were in flight when the last run stopped; checking the server");
        // The timer resolves it (at once), before any new mention is read.
        run.retry = Some((tokio::time::Instant::now(), 0));
        if self.options.once {
            self.mention_timer().await?;
        }
        Ok(())
    }

    /// The mentions timer fired: retry the pending reply, or run the periodic catch-up.
    pub(super) async fn mention_timer(&mut self) -> Result<(), RunError> {
        let Some(run) = &self.mentions else {
            return Ok(());
        };
        let Some((_, attempt)) = run.retry else {
            if let Some(run) = &mut self.mentions {
                if run
                    .paused_until
                    .is_some_and(|at| at <= tokio::time::Instant::now())
                {
                    // The pause after a refused reply is over: read what waited.
                    run.paused_until = None;
                }
            }
            return self.catch_up().await;
        };
        let mut state = std::mem::take(&mut self.state);
        let outcomes = self
            .replier()
            .expect("mentions run with a server")
            .resume(&mut state, attempt)
            .await;
        self.state = state;
        self.after_replies(outcomes?, attempt.saturating_add(1));
        if let Some(run) = &mut self.mentions {
            if run.retry.is_none() {
                // Mentions may have waited meanwhile: catch up now.
                run.next_poll = tokio::time::Instant::now();
            }
        }
        Ok(())
    }

    /// Acts on how sending replies ended (see [`Daemon::after_reply`]); when any must be tried
    /// again, they all wait for the longest of their waits. Returns whether every one of them
    /// was dealt with.
    pub(super) fn after_replies(
        &mut self,
        outcomes: Vec<ReplyOutcome>,
        next_attempt: u32,
    ) -> Handled {
        let (deferred, ended): (Vec<_>, Vec<_>) = outcomes
            .into_iter()
            .partition(|outcome| matches!(outcome, ReplyOutcome::Deferred { .. }));
        for outcome in ended {
            self.after_reply(outcome, next_attempt);
        }
        let longest = deferred
            .into_iter()
            .filter_map(|outcome| match outcome {
                ReplyOutcome::Deferred {
                    retry_in,
                    token_refused,
                } => Some((retry_in, token_refused)),
                _ => None,
            })
            .reduce(|(wait_a, refused_a), (wait_b, refused_b)| {
                (wait_a.max(wait_b), refused_a || refused_b)
            })
            .map(|(retry_in, token_refused)| ReplyOutcome::Deferred {
                retry_in,
                token_refused,
            });
        match longest {
            Some(outcome) => self.after_reply(outcome, next_attempt),
            None => Handled::Done,
        }
    }

    /// Acts on how sending a reply ended; `next_attempt` is the attempt number of the next
    /// try if it must be tried again. Returns whether the mention was dealt with.
    pub(super) fn after_reply(&mut self, outcome: ReplyOutcome, next_attempt: u32) -> Handled {
        match outcome {
            ReplyOutcome::Sent { .. } => {
                self.token_accepted();
                if let Some(run) = &mut self.mentions {
                    run.retry = None;
                    run.refusals = 0;
                }
                Handled::Done
            }
            ReplyOutcome::Dropped => {
                if let Some(run) = &mut self.mentions {
                    run.retry = None;
                }
                Handled::Done
            }
            ReplyOutcome::Refused => {
                self.token_accepted();
                if let Some(run) = &mut self.mentions {
                    run.retry = None;
                    let wait = crate::network::retry::backoff(run.refusals);
                    run.refusals = run.refusals.saturating_add(1);
                    run.paused_until = Some(instant_after(wait));
                    tracing::warn!(
                        refusals = run.refusals,
                        wait_seconds = wait.as_secs(),
                        "replying pauses after the server refused a reply"
                    );
                }
                Handled::Done
            }
            ReplyOutcome::Deferred {
                retry_in,
                token_refused,
            } => {
                if token_refused {
                    self.token_refused("the server refused the token for a reply");
                }
                if let Some(run) = &mut self.mentions {
                    run.retry = Some((instant_after(retry_in), next_attempt));
                }
                Handled::Waiting
            }
        }
    }

    pub(super) async fn on_stream_event(
        &mut self,
        event: Option<StreamEvent>,
    ) -> Result<(), RunError> {
        let mut next = event;
        // An event read while mentions were gathered is acted on in turn.
        while let Some(read_meanwhile) = self.on_one_stream_event(next).await? {
            next = Some(read_meanwhile);
        }
        Ok(())
    }

    /// Acts on one event of the stream; answers an event read meanwhile and not acted on yet.
    async fn on_one_stream_event(
        &mut self,
        event: Option<StreamEvent>,
    ) -> Result<Option<StreamEvent>, RunError> {
        match event {
            Some(StreamEvent::Mention(mention)) => {
                // Mentions that arrived meanwhile are answered with it, up to
                // `REPLIES_IN_FLIGHT` at once (a burst overlaps; a lone mention waits for
                // nothing). Dealt with now; the cursor moves only in catch-ups, so a mention
                // that must wait here is read again by the next one.
                let at_once = replies_at_once(self.server.as_ref().and_then(|s| s.requests_left()));
                let mut mentions = vec![mention];
                let mut after = None;
                while mentions.len() < at_once {
                    let stream = self.mentions.as_mut().and_then(|run| run.stream.as_mut());
                    match stream.and_then(MentionStream::ready) {
                        Some(StreamEvent::Mention(mention)) => mentions.push(mention),
                        Some(other) => {
                            after = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                self.on_mentions(&mentions).await?;
                return Ok(after);
            }
            Some(StreamEvent::Connected) => self.catch_up().await?,
            Some(StreamEvent::Disconnected { reason, retry_in }) => {
                tracing::debug!(%reason, retry_seconds = retry_in.as_secs(), "stream disconnected");
            }
            None => {
                // The listener is gone (shutting down): catch-ups still run on the timer.
                if let Some(run) = &mut self.mentions {
                    run.stream = None;
                }
            }
        }
        Ok(None)
    }

    /// Reads every mention since the cursor and deals with each, oldest first; the cursor
    /// moves past what was dealt with.
    pub(super) async fn catch_up(&mut self) -> Result<(), RunError> {
        let (Some(server), Some(run)) = (&self.server, &mut self.mentions) else {
            return Ok(());
        };
        if run.paused() {
            return Ok(()); // after the pending reply, or the pause
        }
        let poll_every =
            Duration::try_from(self.config.mentions.poll_every).unwrap_or(Duration::from_secs(300));
        let started = self.clock.now();
        let cursor = self.state.mentions.cursor.clone();
        let batch = match server.mentions_since(cursor.as_deref()).await {
            Ok(batch) => batch,
            Err(error) => {
                // Backoff, no longer than `poll_every` unless the server asks for more.
                let wait = crate::network::retry::wait(error.retry_after(), run.catch_up_failures);
                let wait = match error.retry_after() {
                    Some(_) => wait,
                    None => wait.min(poll_every),
                };
                run.catch_up_failures = run.catch_up_failures.saturating_add(1);
                tracing::warn!(%error, wait_seconds = wait.as_secs(), "cannot read mentions; trying again later");
                run.next_poll = instant_after(wait);
                return Ok(());
            }
        };
        run.catch_up_failures = 0;
        run.next_poll = instant_after(poll_every);
        if !batch.mentions.is_empty() {
            tracing::debug!(
                mentions = batch.mentions.len(),
                skipped = batch.skipped,
                "caught up"
            );
        }
        // Mentions are decided in order; the replies go out `REPLIES_IN_FLIGHT` at a time (fewer
        // when the server's rate-limit headers say fewer requests are left).
        // The cursor moves past a mention only once it and every one before it are dealt
        // with.
        let mut last_done: Option<String> = None;
        let mut interrupted = false;
        let mut answers = Vec::new();
        for (index, mention) in batch.mentions.iter().enumerate() {
            match self.triage(mention)? {
                Triage::Done if answers.is_empty() => {
                    last_done = Some(mention.notification_id.clone())
                }
                Triage::Done => {}
                Triage::Waiting => {
                    interrupted = true;
                    break;
                }
                Triage::Answer(intent) => answers.push(intent),
            }
            let last = index + 1 == batch.mentions.len();
            let at_once = replies_at_once(self.server.as_ref().and_then(|s| s.requests_left()));
            if !answers.is_empty() && (answers.len() >= at_once || last) {
                let sent = std::mem::take(&mut answers);
                match self.send_replies(sent).await? {
                    Handled::Done => last_done = Some(mention.notification_id.clone()),
                    Handled::Waiting => {
                        interrupted = true;
                        break;
                    }
                }
            }
            if self.controls.shutdown.is_cancelled() {
                interrupted = true;
                break;
            }
        }
        if !answers.is_empty() {
            // Decided, kept pending in memory, not yet written down (stopped by a shutdown):
            // read and decided again by the next catch-up.
            let dropped: Vec<_> = answers.iter().map(|intent| &intent.notification).collect();
            self.state
                .mentions
                .pending
                .retain(|intent| !dropped.contains(&&intent.notification));
        }
        let new_cursor = if interrupted {
            last_done.or(cursor.clone())
        } else {
            // The account has no notification at all yet: every one from now on is new, so
            // the next catch-up pages forward from before the first. Without this it would
            // read only the newest page again, and a burst while the stream is down would
            // lose all but 80.
            batch
                .cursor
                .clone()
                .or(cursor.clone())
                .or_else(|| Some(CURSOR_BEFORE_EVERYTHING.to_string()))
        };
        let mut changed = new_cursor != cursor;
        self.state.mentions.cursor = new_cursor;
        if !interrupted && batch.complete {
            self.state.mentions.caught_up = Some(started);
            changed = true;
        }
        if self.state.mentions.cursor.is_some() {
            if let Some(run) = &mut self.mentions {
                run.first_start = false;
            }
        }
        if let Some(run) = &mut self.mentions {
            changed |= std::mem::take(&mut run.unsaved);
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// Decides what to do with mentions from the stream, in order, and sends the replies
    /// together. A mention that must wait (replying is paused) is left, with those after it,
    /// to the next catch-up.
    async fn on_mentions(&mut self, mentions: &[Mention]) -> Result<(), RunError> {
        let mut answers = Vec::new();
        for mention in mentions {
            match self.triage(mention)? {
                Triage::Done => {}
                Triage::Waiting => break,
                Triage::Answer(intent) => answers.push(intent),
            }
        }
        if !answers.is_empty() {
            self.send_replies(answers).await?;
        }
        Ok(())
    }

    /// Writes the replies down as pending and sends them (overlapping), then acts on how
    /// each ended.
    async fn send_replies(&mut self, intents: Vec<ReplyIntent>) -> Result<Handled, RunError> {
        let mut state = std::mem::take(&mut self.state);
        let outcomes = self
            .replier()
            .expect("mentions run with a server")
            .send(&mut state, intents, 0)
            .await;
        self.state = state;
        Ok(self.after_replies(outcomes?, 1))
    }

    /// Decides what to do with one mention: records a skip, shows a dry run's reply, or
    /// answers the intent of a reply to send, already kept pending in the state (in memory
    /// only: the caller writes it down before sending), so that the caps count it.
    fn triage(&mut self, mention: &Mention) -> Result<Triage, RunError> {
        let (Some(server), Some(run)) = (&self.server, &self.mentions) else {
            return Ok(Triage::Done);
        };
        if run.paused() {
            return Ok(Triage::Waiting);
        }
        let now = self.clock.now();
        let counter = server.limits().counter();
        let policy = Policy {
            config: &self.config.mentions,
            reply: ReplySettings {
                guides: &self.config.guides,
                reply_visibility: self.config.mentions.reply_visibility,
                counter: &counter,
            },
            bot_account_id: &server.account().id,
            first_start: run.first_start,
        };
        let verdict = decide(mention, &self.state.mentions, &policy, now);
        let reply = match verdict {
            Verdict::AlreadyHandled => return Ok(Triage::Done),
            Verdict::Skip(reason) => {
                tracing::info!(acct = %mention.acct, notification = %mention.notification_id, ?reason, "mention not answered");
                record(
                    &mut self.state.mentions,
                    &mention.notification_id,
                    &mention.status_id,
                    &mention.acct,
                    MentionOutcome::Skipped { reason },
                    now,
                );
                // Appended to the journal without a flush (the next reply's flushes it), and
                // saved with the next catch-up or at shutdown: a skip lost in a crash is
                // decided again, the same way.
                if let Some(run) = &mut self.mentions {
                    run.unsaved = true;
                }
                if let (false, Some(handled)) =
                    (self.options.dry_run, self.state.mentions.handled.last())
                {
                    self.store
                        .append_outcomes(&[JournalEntry::Handled(handled.clone())], &self.state)?;
                }
                return Ok(Triage::Done);
            }
            Verdict::Answer(reply) => reply,
        };
        if self.options.dry_run {
            let zone = self.config.schedule.timezone.clone();
            let at = now.to_zoned(zone).strftime("%a %Y-%m-%d %H:%M %Z");
            self.printer.show(Report::Reply {
                heading: format!(
                    "[{at}] would reply to @{} ({}, in reply to status {}):",
                    mention.acct,
                    reply.visibility.as_str(),
                    mention.status_id
                ),
                text: &reply.text,
            });
            record(
                &mut self.state.mentions,
                &mention.notification_id,
                &mention.status_id,
                &mention.acct,
                MentionOutcome::Replied {
                    status_id: "dry-run".to_string(),
                },
                now,
            );
            return Ok(Triage::Done);
        }
        let intent = new_reply_intent(mention, &reply, now);
        self.state.mentions.pending.push(intent.clone());
        Ok(Triage::Answer(intent))
    }

    /// `[mentions] enabled` changed on a reload: start or stop answering mentions now.
    pub(super) fn follow_mentions_setting(&mut self, was_enabled: bool) -> Result<(), RunError> {
        let enabled = self.config.mentions.enabled;
        if enabled == was_enabled {
            return Ok(());
        }
        if !enabled {
            self.save_unsaved_mentions()?;
            // Dropping the run closes the stream.
            if self.mentions.take().is_some() {
                tracing::info!("[mentions] enabled = false: no longer answering mentions");
            }
            return Ok(());
        }
        match &self.server {
            Some(server) => {
                self.mentions = Some(MentionsRun::start(
                    server.as_ref(),
                    &self.state,
                    &self.options,
                    &self.controls,
                ));
                tracing::info!("[mentions] enabled = true: answering mentions from now on");
            }
            None => tracing::info!(
                "[mentions] enabled = true, but a dry run without a token reads no mentions"
            ),
        }
        Ok(())
    }
}

/// What to do about one mention, decided ([`Daemon::triage`]).
enum Triage {
    /// Dealt with (skipped, shown, or handled before).
    Done,
    /// Replying is paused: the mention waits.
    Waiting,
    /// Send this reply.
    Answer(ReplyIntent),
}
