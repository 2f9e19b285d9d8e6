//! The daemon's posts: what is due, sending it through [`crate::daemon::publish`], what a
//! failure means for the plan, and what a dry run shows instead.

use super::*;

impl Daemon {
    pub(super) fn publisher(&self) -> Option<Publisher<'_>> {
        Some(Publisher {
            network: self.server.as_deref()?,
            store: &self.store,
            clock: self.clock.as_ref(),
            shutdown: &self.controls.shutdown,
            checkpoint: self.checkpoint.as_ref(),
        })
    }

    /// When a pending post none of whose parts went out stops being worth sending.
    pub(super) fn pending_deadline(&self, pending: &crate::state::PostIntent) -> Timestamp {
        pending
            .started
            .checked_add(self.config.schedule.grace)
            .unwrap_or(pending.started)
    }

    /// One try at the pending post: a post left in flight by an earlier run (found already
    /// out, or finished), or the next try after a failure.
    pub(super) async fn try_pending(&mut self) -> Result<(), RunError> {
        let Some(pending) = &self.state.pending else {
            return Ok(());
        };
        if self.options.dry_run {
            self.note(format!("dry run: a post is in flight from an earlier run ({}); the daemon would check it first", pending.post));
            return Ok(());
        }
        let key = (Some(pending.post.clone()), pending.slot, pending.reason);
        let (progress, deadline) = match self.post_retry.take() {
            Some(retry) => (retry.progress, retry.deadline),
            None => {
                tracing::info!(post = %pending.post, "a post was in flight when the last run stopped; checking the server");
                (Progress::resume(), self.pending_deadline(pending))
            }
        };
        let mut state = std::mem::take(&mut self.state);
        let outcome = self
            .publisher()
            .expect("a server outside dry runs")
            .try_pending(&mut state, deadline, progress)
            .await;
        self.state = state;
        self.after_send(outcome?, deadline, key)?;
        Ok(())
    }

    /// Acts on how a try at sending a post ended. `key`: the post, its slot and reason.
    /// Returns whether the loop may go on with the plan it has.
    pub(super) fn after_send(
        &mut self,
        outcome: Outcome,
        deadline: Timestamp,
        key: (Option<String>, Timestamp, PostReason),
    ) -> Result<bool, RunError> {
        let (post, slot, reason) = key;
        match outcome {
            Outcome::Sent { statuses } => {
                self.token_accepted();
                tracing::info!(post = ?post, parts = statuses.len(), "post is out");
                Ok(true)
            }
            Outcome::Rejected { .. } => {
                self.token_accepted();
                let count = match self.rejected_in_slot {
                    Some((rejected_slot, count)) if rejected_slot == slot => count + 1,
                    _ => 1,
                };
                self.rejected_in_slot = Some((slot, count));
                if reason == PostReason::Slot && count >= MAX_REJECTIONS_PER_SLOT {
                    tracing::warn!(%slot, refused = count, "the server refused {count} posts in this slot; the slot is skipped, the next one tries again");
                    record_slot(&mut self.state, slot, None);
                    self.save()?;
                }
                Ok(false)
            }
            Outcome::Retry {
                wait,
                progress,
                reason,
                token_refused,
            } => {
                if token_refused {
                    self.token_refused(&reason);
                } else {
                    self.token_accepted();
                }
                self.post_retry = Some(PostRetry {
                    at: instant_after(wait),
                    progress,
                    deadline,
                });
                Ok(false)
            }
            Outcome::Deferred { still_pending, .. } => {
                if still_pending {
                    // A part is out or may be: checked again after a pause (its deadline
                    // has passed or the daemon is stopping).
                    self.post_retry = Some(PostRetry {
                        at: instant_after(Duration::from_secs(60)),
                        progress: Progress::resume(),
                        deadline,
                    });
                    return Ok(false);
                }
                // Only entries that may still be planned as due are kept (within `grace` and
                // `jitter` of their slot), so a long run does not grow the list.
                let now = self.clock.now();
                let window = self.config.schedule.grace.max(SignedDuration::ZERO)
                    + self.config.schedule.jitter.max(SignedDuration::ZERO);
                self.given_up.retain(|(_, given_up)| {
                    given_up.checked_add(window).is_ok_and(|end| end >= now)
                });
                self.given_up.push((post, slot));
                if reason == PostReason::Slot {
                    // The slot is over; the rotation goes on from the next one, with the
                    // credit it had (nothing went out).
                    record_slot(&mut self.state, slot, None);
                    self.save()?;
                }
                Ok(true)
            }
        }
    }

    /// A post failed with other fitting settings than today's (the limit was fixed, the
    /// server changed) is tried again.
    pub(super) fn retry_failed_on_new_settings(&mut self) -> Result<(), RunError> {
        let counter = self.counter();
        let current = settings_fingerprint(&fit_settings(&self.config, &counter));
        let before = self.state.failed.len();
        self.state.failed.retain(|post, failed| {
            let keep = failed.settings.as_deref() == Some(current.as_str());
            if !keep {
                tracing::info!(%post, "a post the server refused is tried again: the settings it is fitted with have changed");
            }
            keep
        });
        if self.state.failed.len() != before {
            self.save()?;
        }
        Ok(())
    }

    /// Whether `entry` is due at `now` and not given up on in this run.
    pub(super) fn to_send(&self, entry: &Entry, now: Timestamp) -> bool {
        entry.is_due(now) && !self.given_up.contains(&(entry.post.clone(), entry.slot))
    }

    /// Tells systemd and the log what comes next (`ahead`, the first), once per change: the
    /// daemon wakes for mentions and every few hours, and the same "next:" line each time is
    /// noise. A dry run says it on standard output instead of the log (each line once), and
    /// the first time shows the next post whole and the plan after it.
    pub(super) fn announce(&mut self, ahead: &[&Entry]) {
        let next = ahead.first().copied();
        let zone = self.config.schedule.timezone.clone();
        let line = match next {
            Some(entry) => {
                let at = entry
                    .at
                    .to_zoned(zone)
                    .strftime("%a %Y-%m-%d %H:%M %Z")
                    .to_string();
                match &entry.post {
                    Some(post) => format!("next: {post} at {at}"),
                    None => format!("next: an empty slot at {at} (nothing eligible)"),
                }
            }
            None => "nothing planned".to_string(),
        };
        if self.announced.as_deref() == Some(line.as_str()) {
            return;
        }
        self.notifier.status(&line);
        if !self.options.dry_run {
            tracing::info!("{line}");
        } else if self.announced.is_none() {
            self.print_dry_run_start(ahead);
        } else {
            self.note(line.clone());
        }
        self.announced = Some(line);
    }

    /// A dry run's start: the next post exactly as it will go out, then the plan after it.
    pub(super) fn print_dry_run_start(&self, ahead: &[&Entry]) {
        let Some(next) = ahead.first() else {
            self.note("nothing planned".to_string());
            return;
        };
        match self.post_of(next) {
            Some(post) => {
                let composed = compose(post, &fit_settings(&self.config, &self.counter()));
                self.print_dry_run(post, next, &composed, "next:");
            }
            None => self.note(format!(
                "next: an empty slot at {} (nothing eligible)",
                self.local_time(next.at)
            )),
        }
        if ahead.len() > 1 {
            self.note("then:".to_string());
        }
        for entry in &ahead[1..] {
            let what = match self.post_of(entry) {
                Some(post) => {
                    let composed = compose(post, &fit_settings(&self.config, &self.counter()));
                    format!("{} ({})", post.id, composed.fit)
                }
                None => "an empty slot (nothing eligible)".to_string(),
            };
            self.note(format!("  {}  {what}", self.local_time(entry.at)));
        }
        if self.options.once {
            self.note("(--once: nothing is due now)".to_string());
        } else {
            self.note("(each post is printed whole when it falls due; Ctrl-C stops)".to_string());
        }
    }

    pub(super) fn post_of(&self, entry: &Entry) -> Option<&Post> {
        let id = entry.post.as_ref()?;
        self.library.posts.iter().find(|post| &post.id == id)
    }

    /// `Fri 2026-12-04 09:31 MST`: a time in the schedule's zone.
    pub(super) fn local_time(&self, at: Timestamp) -> String {
        at.to_zoned(self.config.schedule.timezone.clone())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// At start: ad hoc posts whose time passed without them going out before the daemon
    /// last looked (or before it ever ran), which the plan's missed list never names.
    pub(super) fn report_stale_adhoc(&self) {
        let now = self.clock.now();
        let checked = self.state.rotation.checked;
        let zone = &self.config.schedule.timezone;
        for stale in crate::plan::stale_adhoc(
            &self.library.posts,
            &self.state,
            now,
            self.config.schedule.grace,
        ) {
            if checked.is_some_and(|checked| stale.at > checked) {
                continue; // missed while the daemon was down: `report_missed` says so
            }
            tracing::warn!(
                post = %stale.post,
                at = %stale.at.to_zoned(zone.clone()),
                "an ad hoc post's time has passed and it was not sent: {}; set `at` to a time to come, or remove the post",
                stale.consequence()
            );
        }
    }

    pub(super) fn report_missed(&self, plan: &Plan) {
        for missed in &plan.missed {
            match missed {
                Missed::Slots { count, first, last } if *first >= self.started => tracing::warn!(
                    count, %first, %last,
                    "slots passed while the daemon was busy (a post being retried, or the server unreachable) are skipped"
                ),
                Missed::Slots { count, first, last } => tracing::warn!(
                    count, %first, %last,
                    "slots missed while the daemon was not running are skipped (at most one within `grace` is posted late)"
                ),
                Missed::Adhoc { post, at } if *at >= self.started => tracing::warn!(
                    %post, %at,
                    "an ad hoc post fell due more than `grace` ago while the daemon was busy (a post being retried, or the server unreachable); it is skipped"
                ),
                Missed::Adhoc { post, at } => tracing::warn!(
                    %post, %at,
                    "an ad hoc post was due more than `grace` ago while the daemon was not running; it is skipped"
                ),
            }
        }
    }

    /// Deals with one due entry. `false`: plan again before going on (the post was refused
    /// and the slot takes the next one, or the entry is pending).
    pub(super) async fn handle(&mut self, entry: &Entry) -> Result<bool, RunError> {
        let now = self.clock.now();
        let Some(post) = entry
            .post
            .as_ref()
            .and_then(|id| self.library.posts.iter().find(|post| &post.id == id))
            .cloned()
        else {
            tracing::info!(slot = %entry.slot, "nothing eligible for this slot");
            record_entry(&mut self.state, entry, "", now, Vec::new());
            self.save()?;
            return Ok(true);
        };
        let counter = self.counter();
        let settings = fit_settings(&self.config, &counter);
        let composed = compose(&post, &settings);
        if self.options.dry_run {
            self.print_dry_run(&post, entry, &composed, "would post now:");
            let ids = (0..composed.statuses.len())
                .map(|i| format!("dry-run-{i}"))
                .collect();
            record_entry(&mut self.state, entry, &post.content_hash, now, ids);
            return Ok(true);
        }
        let settings = settings_fingerprint(&settings);
        let spec = IntentSpec {
            slot: entry.slot,
            reason: entry.reason,
            credit_after: (entry.reason == PostReason::Slot).then(|| entry.credit_after.clone()),
            settings: settings.clone(),
        };
        let intent = new_intent(&post, &composed, spec, now);
        let deadline = entry
            .at
            .checked_add(self.config.schedule.grace)
            .unwrap_or(entry.at);
        let key = (entry.post.clone(), entry.slot, entry.reason);
        let mut state = std::mem::take(&mut self.state);
        let publisher = self.publisher().expect("a server outside dry runs");
        let outcome = match composed.unsendable() {
            // A post that cannot keep its text and link within the limit is failed, never
            // posted as a lone `…`.
            Some(why) => publisher.refuse(&mut state, &intent, why, &settings),
            None => publisher.publish(&mut state, intent, deadline).await,
        };
        self.state = state;
        self.after_send(outcome?, deadline, key)
    }

    /// A post of a dry run, whole, through the printer `preview` uses; `what` says whether it
    /// is the next one or one due now.
    pub(super) fn print_dry_run(
        &self,
        post: &Post,
        entry: &Entry,
        composed: &crate::text::compose::Composed,
        what: &str,
    ) {
        let heading = format!(
            "{what} {} at {} ({}, {})",
            post.id,
            self.local_time(entry.at),
            match entry.reason {
                PostReason::Slot => "rotation slot",
                PostReason::Adhoc => "ad hoc",
                PostReason::Manual => "by hand",
            },
            composed.fit
        );
        self.printer.show(Report::Post {
            heading,
            post,
            composed,
            limit: self.counter().limit(),
        });
    }

    /// A sentence of a dry run's, for people.
    pub(super) fn note(&self, line: String) {
        self.printer.show(Report::Note(line));
    }
}
