//! The exactly-once engine: what posts ([`crate::daemon::publish`]) and replies
//! ([`crate::daemon::mentions`]) both send through (ARCHITECTURE.md, "Exactly once").
//!
//! 1. **Intent saved**: the exact text of every part (and how to recognise each one on the
//!    network) is on disk before the first request ([`Engine::begin`]): in the state file
//!    for a post, in the mentions journal for a reply ([`Intent::journal`]).
//! 2. **Sent**: one part at a time ([`Engine::part`]); what the network accepted is recorded
//!    (for a thread, saved as soon as it is accepted, so that a crash between parts resumes
//!    from the next one).
//! 3. **Verified before any resend**: after a failure that may have reached the network, and
//!    for an intent found on start-up, the part is looked for ([`crate::network::Network::find_sent`],
//!    with the intent's [`Lookup`]) and sent only when it is not there.
//! 4. **Resolved on start**: the users call [`Engine::part`] with `look = true` for the intent
//!    an earlier run left.
//!
//! What each user adds is its own policy: a post's deadline, media and thread order; a reply's
//! expiry and caps. The engine knows neither.

use crate::network::{Lookup, Network, NewStatus, PartOf, ServerError};
use crate::state::{JournalEntry, PostIntent, State, StateError, StateStore};

/// Points in the sending of a post or a reply where a test can stop the daemon dead, as a
/// crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The intent is saved; nothing is sent yet.
    IntentSaved,
    /// Part `n` (from 0) is about to be sent.
    BeforePart(usize),
    /// The server accepted part `n`; its id is not saved yet.
    Accepted(usize),
    /// Part `n`'s id is saved.
    Recorded(usize),
    /// A reply to a mention: its intent is saved; nothing is sent yet.
    ReplyIntentSaved,
    /// The server accepted the reply; that is not saved yet.
    ReplyAccepted,
}

/// A test hook: called at each [`Step`]; returning `true` stops the task there for good
/// (the test then aborts it, as a crash would). Only with the `testing` feature (Cargo.toml).
#[cfg(feature = "testing")]
pub type Checkpoint = std::sync::Arc<dyn Fn(Step) -> bool + Send + Sync>;

/// Without the `testing` feature there are no hooks: a type with no values, so every
/// `Option<Checkpoint>` is `None` and [`Engine::halt`] compiles to nothing.
#[cfg(not(feature = "testing"))]
#[derive(Clone)]
pub enum Checkpoint {}

/// Where in sending one part the engine is, for [`Intent::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Saved,
    Before(usize),
    Accepted(usize),
    Recorded(usize),
}

/// What the engine needs of an intent (a post's thread, a reply).
pub trait Intent {
    /// What it is, for the network's [`Network::before_first_part`].
    fn of(&self) -> PartOf;
    /// Whether what the network chose before the first send is known.
    fn prepared(&self) -> bool;
    /// Keeps what the network chose before the first send.
    fn set_prepared(&mut self, bound: Option<String>);
    /// The status to send for part `index`; `media_ids` go with the first part.
    fn status(&self, index: usize, media_ids: &[String]) -> NewStatus;
    /// How to recognise part `index` on the network.
    fn lookup(&self, index: usize) -> Lookup<'_>;
    /// Notes that part `index` is out as `id`.
    fn record(&mut self, index: usize, id: &str);
    /// Puts the intent in its place in the state (the pending post, the pending reply).
    fn keep(&self, state: &mut State);
    /// Whether each part's id is saved as soon as it is out (a thread: yes; a reply, whose
    /// user records the outcome itself, in the journal: no).
    fn saves_each_part(&self) -> bool;
    /// The test hook's name for a point in sending, if this kind of intent has one there.
    fn step(&self, at: At) -> Option<Step>;
    /// The intent as a line of the mentions journal, for intents kept there (a reply)
    /// rather than by saving the whole state file (a post).
    fn journal(&self) -> Option<JournalEntry> {
        None
    }
}

/// How one part ended.
#[derive(Debug)]
pub enum Part {
    /// It was out already (found on the network): not sent again.
    Found(String),
    /// Sent now, and accepted.
    Sent(String),
    /// Looking for it failed: nothing was sent.
    LookFailed(ServerError),
    /// Sending it failed ([`ServerError::uncertain`] says whether it may be out all the same).
    SendFailed(ServerError),
}

/// Sends intents exactly once.
pub struct Engine<'a> {
    pub network: &'a dyn Network,
    pub store: &'a StateStore,
    pub checkpoint: Option<&'a Checkpoint>,
}

impl Engine<'_> {
    /// Saves `intent` as pending, before anything is sent.
    pub async fn begin(&self, state: &mut State, intent: &impl Intent) -> Result<(), StateError> {
        self.begin_all(state, std::slice::from_ref(intent)).await
    }

    /// Saves every one of `intents` as pending, in one write and one flush, before anything
    /// is sent.
    pub async fn begin_all<I: Intent>(
        &self,
        state: &mut State,
        intents: &[I],
    ) -> Result<(), StateError> {
        for intent in intents {
            intent.keep(state);
        }
        self.persist(state, intents)?;
        for intent in intents {
            self.halt(intent, At::Saved).await;
        }
        Ok(())
    }

    /// Writes `intents`, already kept in `state`, to disk: as lines of the mentions journal
    /// when each has one, else by saving the state file.
    pub fn persist<I: Intent>(&self, state: &State, intents: &[I]) -> Result<(), StateError> {
        match intents
            .iter()
            .map(Intent::journal)
            .collect::<Option<Vec<_>>>()
        {
            Some(entries) if !entries.is_empty() => self.store.append(&entries, true),
            Some(_) => Ok(()),
            None => self.store.save(state),
        }
    }

    /// Asks the network, before the first part is first sent, for what will recognise it
    /// later ([`Network::before_first_part`]), and saves it with the intent before anything
    /// is sent. Nothing to do when that is known already. On an error nothing is kept: the
    /// user decides whether to wait or to send without it.
    pub async fn prepare(
        &self,
        state: &mut State,
        intent: &mut impl Intent,
    ) -> Result<Result<(), ServerError>, StateError> {
        if intent.prepared() {
            return Ok(Ok(()));
        }
        let bound = match self.network.before_first_part(intent.of()).await {
            Ok(bound) => bound,
            Err(error) => return Ok(Err(error)),
        };
        // Saved when there is something to keep, or when the intent keeps every step.
        let save = bound.is_some() || intent.saves_each_part();
        intent.set_prepared(bound);
        if save {
            intent.keep(state);
            self.persist(state, std::slice::from_ref(intent))?;
        }
        Ok(Ok(()))
    }

    /// What the network chooses before the first send of `intent`
    /// ([`Network::before_first_part`]); `None` when that is known already. The network half
    /// of [`Engine::prepare`], for users that prepare several intents at once and keep what
    /// was chosen themselves ([`Intent::set_prepared`], then [`Engine::persist`]).
    pub async fn choose(
        &self,
        intent: &impl Intent,
    ) -> Result<Option<Option<String>>, ServerError> {
        if intent.prepared() {
            return Ok(None);
        }
        self.network.before_first_part(intent.of()).await.map(Some)
    }

    /// Part `index` of `intent`, at most once: with `look` (the last try may have reached the
    /// network, or the intent is an earlier run's) it is looked for first, and sent only when
    /// it is not out.
    pub async fn part(
        &self,
        state: &mut State,
        intent: &mut impl Intent,
        index: usize,
        look: bool,
        media_ids: &[String],
    ) -> Result<Part, StateError> {
        if look {
            match self.look(state, intent, index).await? {
                Ok(Some(id)) => return Ok(Part::Found(id)),
                Ok(None) => {}
                Err(error) => return Ok(Part::LookFailed(error)),
            }
        }
        Ok(match self.send(state, intent, index, media_ids).await? {
            Ok(id) => Part::Sent(id),
            Err(error) => Part::SendFailed(error),
        })
    }

    /// Looks for part `index` on the network; when it is out, records it in the intent (and
    /// saves, for intents that save each part).
    pub async fn look(
        &self,
        state: &mut State,
        intent: &mut impl Intent,
        index: usize,
    ) -> Result<Result<Option<String>, ServerError>, StateError> {
        let found = match self.find(intent, index).await {
            Ok(found) => found,
            Err(error) => return Ok(Err(error)),
        };
        if let Some(id) = &found {
            self.record(state, intent, index, id)?;
        }
        Ok(Ok(found))
    }

    /// Sends part `index` (the caller has made sure it is not out); when the network accepts
    /// it, records it in the intent (and saves, for intents that save each part).
    pub async fn send(
        &self,
        state: &mut State,
        intent: &mut impl Intent,
        index: usize,
        media_ids: &[String],
    ) -> Result<Result<String, ServerError>, StateError> {
        let id = match self.transmit(intent, index, media_ids).await {
            Ok(id) => id,
            Err(error) => return Ok(Err(error)),
        };
        self.record(state, intent, index, &id)?;
        if intent.saves_each_part() {
            self.halt(intent, At::Recorded(index)).await;
        }
        Ok(Ok(id))
    }

    /// Sends part `index` (the caller has made sure it is not out) and answers its id, without
    /// recording it: the network half of [`Engine::send`], for users that send several intents
    /// at once and record each outcome themselves.
    pub async fn transmit(
        &self,
        intent: &impl Intent,
        index: usize,
        media_ids: &[String],
    ) -> Result<String, ServerError> {
        let status = intent.status(index, media_ids);
        self.halt(intent, At::Before(index)).await;
        let id = self.network.send(&status).await?;
        self.halt(intent, At::Accepted(index)).await;
        Ok(id)
    }

    /// Part `index` of `intent`, if it is out: looked for only (for an intent that may no
    /// longer be sent, but must not be sent twice either).
    pub async fn find(
        &self,
        intent: &impl Intent,
        index: usize,
    ) -> Result<Option<String>, ServerError> {
        self.network.find_sent(&intent.lookup(index)).await
    }

    fn record(
        &self,
        state: &mut State,
        intent: &mut impl Intent,
        index: usize,
        id: &str,
    ) -> Result<(), StateError> {
        intent.record(index, id);
        if intent.saves_each_part() {
            intent.keep(state);
            self.persist(state, std::slice::from_ref(intent))?;
        }
        Ok(())
    }

    /// Gives a test's checkpoint its say; one that halts here never returns (the test then
    /// aborts the task, as a crash would).
    #[cfg(feature = "testing")]
    async fn halt(&self, intent: &impl Intent, at: At) {
        if let (Some(checkpoint), Some(step)) = (self.checkpoint, intent.step(at)) {
            if checkpoint(step) {
                std::future::pending::<()>().await;
            }
        }
    }

    #[cfg(not(feature = "testing"))]
    async fn halt(&self, _intent: &impl Intent, _at: At) {
        if let Some(never) = self.checkpoint {
            match *never {}
        }
    }
}

/// A post: a thread of parts, each replying to the one before, media on the first.
impl Intent for PostIntent {
    fn of(&self) -> PartOf {
        PartOf::Post
    }

    fn prepared(&self) -> bool {
        self.after_status_read
    }

    /// The newest own status before the first send: a first part found later must be newer
    /// (ids grow with time), whatever the local clock says.
    fn set_prepared(&mut self, bound: Option<String>) {
        self.after_status = bound;
        self.after_status_read = true;
    }

    fn status(&self, index: usize, media_ids: &[String]) -> NewStatus {
        let part = &self.parts[index];
        NewStatus {
            text: part.text.clone(),
            spoiler_text: part.spoiler_text.clone(),
            visibility: part.visibility.unwrap_or(self.visibility),
            language: part.language.clone().or_else(|| self.language.clone()),
            in_reply_to_id: self.in_reply_to(index).map(str::to_string),
            media_ids: if index == 0 {
                media_ids.to_vec()
            } else {
                Vec::new()
            },
            idempotency_key: Some(part.idempotency_key.clone()),
            prepared: if index == 0 {
                self.after_status.clone()
            } else {
                None
            },
        }
    }

    /// The first part must be newer than the newest own status seen just before it was first
    /// sent; a later part must reply to the part before it, which only ours can. An intent
    /// written before `after_status` existed is matched by time, as then.
    fn lookup(&self, index: usize) -> Lookup<'_> {
        let part = &self.parts[index];
        Lookup {
            text: Some((
                part.text.as_str(),
                part.spoiler_text.as_deref().unwrap_or(""),
            )),
            in_reply_to: self.in_reply_to(index),
            after: if index == 0 && self.after_status_read {
                self.after_status.as_deref()
            } else {
                None
            },
            not_before: (index == 0 && !self.after_status_read).then(|| {
                self.started
                    .checked_sub(LEGACY_CLOCK_SKEW)
                    .unwrap_or(jiff::Timestamp::MIN)
            }),
        }
    }

    fn record(&mut self, index: usize, id: &str) {
        self.parts[index].status_id = Some(id.to_string());
    }

    fn keep(&self, state: &mut State) {
        state.pending = Some(self.clone());
    }

    fn saves_each_part(&self) -> bool {
        true
    }

    fn step(&self, at: At) -> Option<Step> {
        Some(match at {
            At::Saved => Step::IntentSaved,
            At::Before(n) => Step::BeforePart(n),
            At::Accepted(n) => Step::Accepted(n),
            At::Recorded(n) => Step::Recorded(n),
        })
    }
}

/// Intents written before `after_status` existed are matched by time: a status created this
/// long before the intent was written may still be ours (clock skew).
const LEGACY_CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

impl PostIntent {
    /// What part `index` replies to: the part before it (`None` for the first, or while the
    /// part before is not known to be out).
    fn in_reply_to(&self, index: usize) -> Option<&str> {
        index
            .checked_sub(1)
            .and_then(|before| self.parts[before].status_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    //! The engine's promise for both of its users, a thread and a reply, against an in-memory
    //! network: stopped dead at any step and resumed (as a restart does), every part is out
    //! exactly once; an answer lost after the network acted is looked for, not resent.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use jiff::Timestamp;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::daemon::mentions::ReplyDelivery;
    use crate::network::error::ErrorKind;
    use crate::network::{Account, CatchUp, Limits, MentionStream};
    use crate::posts::config::Visibility;
    use crate::state::{IntentPart, PostReason, ReplyIntent, ServerSeen};
    use crate::text::count::Software;

    /// A network that keeps what it is sent, in order; ids are `1`, `2`, ... (growing, as
    /// Mastodon's, GoToSocial's and Pleroma's do).
    #[derive(Debug)]
    struct Memory {
        account: Account,
        limits: Limits,
        sent: Mutex<Vec<(String, NewStatus)>>,
        /// How many of the next sends are acted on but answered with a broken connection.
        lose_answers: Mutex<usize>,
        /// Like Bluesky: the record's name is chosen before the first send
        /// (`before_first_part`), and a record is found by that name alone.
        keyed: bool,
        keys_chosen: Mutex<usize>,
        /// Sends under way now, and the most there were at once.
        in_flight: Mutex<(usize, usize)>,
    }

    impl Memory {
        fn new() -> Memory {
            Memory {
                account: Account {
                    id: "1".into(),
                    acct: "bot".into(),
                    username: "bot".into(),
                    bot: true,
                },
                // What a Mastodon server that reports nothing allows.
                limits: crate::network::mastodon::limits(
                    Software::Mastodon,
                    Default::default(),
                    None,
                ),
                sent: Mutex::new(Vec::new()),
                lose_answers: Mutex::new(0),
                keyed: false,
                keys_chosen: Mutex::new(0),
                in_flight: Mutex::new((0, 0)),
            }
        }

        fn most_in_flight(&self) -> usize {
            self.in_flight.lock().unwrap().1
        }

        fn keyed() -> Memory {
            Memory {
                keyed: true,
                ..Memory::new()
            }
        }

        fn sent(&self) -> Vec<(String, NewStatus)> {
            self.sent.lock().unwrap().clone()
        }
    }

    fn numeric(id: &str) -> u64 {
        id.parse().unwrap()
    }

    impl Network for Memory {
        fn account(&self) -> &Account {
            &self.account
        }

        fn limits(&self) -> &Limits {
            &self.limits
        }

        fn seen(&self, at: Timestamp) -> ServerSeen {
            ServerSeen {
                url: "memory:".into(),
                software: self.limits.software,
                max_characters: self.limits.max_characters,
                characters_reserved_per_url: self.limits.characters_reserved_per_url,
                max_media_attachments: self.limits.max_media_attachments,
                description_limit: self.limits.description_limit,
                image_size_limit: None,
                video_size_limit: None,
                account_id: self.account.id.clone(),
                acct: self.account.acct.clone(),
                at,
            }
        }

        fn before_first_part(
            &self,
            of: PartOf,
        ) -> BoxFuture<'_, Result<Option<String>, ServerError>> {
            let newest = if self.keyed {
                let mut chosen = self.keys_chosen.lock().unwrap();
                *chosen += 1;
                Some(format!("rkey-{chosen}"))
            } else {
                match of {
                    PartOf::Post => self.sent().last().map(|(id, _)| id.clone()),
                    PartOf::Reply => None,
                }
            };
            Box::pin(async move { Ok(newest) })
        }

        fn send<'a>(&'a self, part: &'a NewStatus) -> BoxFuture<'a, Result<String, ServerError>> {
            let mut sent = self.sent.lock().unwrap();
            let id = (sent.len() + 1).to_string();
            sent.push((id.clone(), part.clone()));
            let mut lose = self.lose_answers.lock().unwrap();
            let answer = if *lose > 0 {
                *lose -= 1;
                Err(ServerError::new(
                    "POST /statuses",
                    ErrorKind::ConnectionLost {
                        detail: "reset".into(),
                    },
                ))
            } else {
                Ok(id)
            };
            Box::pin(async move {
                // In flight until the task yields once: sends that overlap are all in flight
                // at once.
                {
                    let mut in_flight = self.in_flight.lock().unwrap();
                    in_flight.0 += 1;
                    in_flight.1 = in_flight.1.max(in_flight.0);
                }
                tokio::task::yield_now().await;
                self.in_flight.lock().unwrap().0 -= 1;
                answer
            })
        }

        fn find_sent<'a>(
            &'a self,
            lookup: &'a Lookup<'a>,
        ) -> BoxFuture<'a, Result<Option<String>, ServerError>> {
            if let (true, Some(key)) = (self.keyed, lookup.after) {
                let found = self
                    .sent()
                    .into_iter()
                    .find(|(_, status)| status.prepared.as_deref() == Some(key))
                    .map(|(id, _)| id);
                return Box::pin(async move { Ok(found) });
            }
            let found = self
                .sent()
                .into_iter()
                .filter(|(id, _)| {
                    lookup
                        .after
                        .is_none_or(|after| numeric(id) > numeric(after))
                })
                .filter(|(_, status)| status.in_reply_to_id.as_deref() == lookup.in_reply_to)
                .find(|(_, status)| {
                    lookup.text.is_none_or(|(text, spoiler)| {
                        status.text == text
                            && status.spoiler_text.as_deref().unwrap_or("") == spoiler
                    })
                })
                .map(|(id, _)| id);
            Box::pin(async move { Ok(found) })
        }

        fn upload_media<'a>(
            &'a self,
            _path: &'a std::path::Path,
            _alt: &'a str,
        ) -> BoxFuture<'a, Result<String, ServerError>> {
            Box::pin(async { Ok("media-1".to_string()) })
        }

        fn mentions_since<'a>(
            &'a self,
            cursor: Option<&'a str>,
        ) -> BoxFuture<'a, Result<CatchUp, ServerError>> {
            Box::pin(async move {
                Ok(CatchUp {
                    mentions: Vec::new(),
                    cursor: cursor.map(str::to_string),
                    skipped: 0,
                    complete: true,
                })
            })
        }

        fn listen(&self, shutdown: CancellationToken) -> MentionStream {
            let (_sender, events) = tokio::sync::mpsc::channel(1);
            MentionStream::new(events, shutdown)
        }
    }

    use futures_util::future::BoxFuture;

    fn at() -> Timestamp {
        "2026-12-07T10:00:00Z".parse().unwrap()
    }

    fn thread(parts: usize) -> PostIntent {
        PostIntent {
            post: "tips/a".into(),
            hash: "h".into(),
            slot: at(),
            reason: PostReason::Slot,
            category: "tips".into(),
            started: at(),
            visibility: Visibility::Public,
            language: Some("en".into()),
            media: Vec::new(),
            credit_after: None,
            settings: None,
            account: Some("1".into()),
            after_status: None,
            after_status_read: false,
            parts: (0..parts)
                .map(|n| IntentPart {
                    text: format!("part {} of {parts}", n + 1),
                    spoiler_text: None,
                    visibility: Some(Visibility::Public),
                    language: None,
                    idempotency_key: format!("key-{n}"),
                    status_id: None,
                })
                .collect(),
        }
    }

    fn reply() -> ReplyDelivery<'static> {
        ReplyDelivery {
            intent: ReplyIntent {
                notification: "n-1".into(),
                status: "mention-status".into(),
                acct: "alice".into(),
                text: "@alice This guide should help".into(),
                visibility: Visibility::Unlisted,
                idempotency_key: "reply-key".into(),
                started: at(),
                key: None,
            },
            language: Some("en"),
        }
    }

    fn engine<'a>(
        network: &'a Memory,
        store: &'a StateStore,
        checkpoint: Option<&'a Checkpoint>,
    ) -> Engine<'a> {
        Engine {
            network,
            store,
            checkpoint,
        }
    }

    /// Delivers every part not known to be out, looking first when `look`.
    async fn deliver_all(
        engine: &Engine<'_>,
        state: &mut State,
        intent: &mut PostIntent,
        look: bool,
    ) {
        for index in 0..intent.parts.len() {
            if intent.parts[index].status_id.is_some() {
                continue;
            }
            match engine.part(state, intent, index, look, &[]).await.unwrap() {
                Part::Found(_) | Part::Sent(_) => {}
                other => panic!("part {index}: {other:?}"),
            }
        }
    }

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A first try at `intent` (saved, prepared, sent part by part), stopped dead at `step`.
    async fn stopped_at(
        step: Step,
        network: &Memory,
        store: &StateStore,
        intent: &mut impl Intent,
        parts: usize,
    ) {
        let checkpoint: Checkpoint = Arc::new(move |at| at == step);
        let engine = engine(network, store, Some(&checkpoint));
        let mut state = State::default();
        let run = async {
            engine.begin(&mut state, intent).await.unwrap();
            engine.prepare(&mut state, intent).await.unwrap().unwrap();
            for index in 0..parts {
                engine
                    .part(&mut state, intent, index, false, &[])
                    .await
                    .unwrap();
            }
        };
        assert!(
            tokio::time::timeout(PATIENCE, run).await.is_err(),
            "{step:?}: the checkpoint stops the run"
        );
    }

    /// What a restart finds in the state file: the post in flight.
    fn restarted_thread(store: &StateStore) -> (State, PostIntent) {
        let state = store.load().unwrap().expect("the intent was saved");
        let intent = state.pending.clone().expect("a post in flight");
        (state, intent)
    }

    /// What a restart finds in the state file: the reply in flight.
    fn restarted_reply(store: &StateStore) -> (State, ReplyDelivery<'static>) {
        let state = store.load().unwrap().expect("the intent was saved");
        let intent = state
            .mentions
            .pending
            .first()
            .cloned()
            .expect("a reply in flight");
        (
            state,
            ReplyDelivery {
                intent,
                language: Some("en"),
            },
        )
    }

    /// The first part, looked for on resuming: found as status `1`, not sent again.
    async fn found_again(
        network: &Memory,
        store: &StateStore,
        state: &mut State,
        intent: &mut impl Intent,
    ) {
        let part = engine(network, store, None)
            .part(state, intent, 0, true, &[])
            .await
            .unwrap();
        assert!(matches!(part, Part::Found(ref id) if id == "1"), "{part:?}");
        assert_eq!(network.sent().len(), 1, "sent once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_thread_stopped_at_any_step_is_out_once_after_a_restart() {
        let mut steps = vec![Step::IntentSaved];
        for n in 0..3 {
            steps.extend([Step::BeforePart(n), Step::Accepted(n), Step::Recorded(n)]);
        }
        for step in steps {
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::new(dir.path());
            let network = Memory::new();
            stopped_at(step, &network, &store, &mut thread(3), 3).await;
            // A restart: what the file says, every part looked for before it is sent.
            let (mut state, mut intent) = restarted_thread(&store);
            deliver_all(
                &engine(&network, &store, None),
                &mut state,
                &mut intent,
                true,
            )
            .await;
            let sent = network.sent();
            let texts: Vec<&str> = sent.iter().map(|(_, s)| s.text.as_str()).collect();
            assert_eq!(
                texts,
                ["part 1 of 3", "part 2 of 3", "part 3 of 3"],
                "{step:?}"
            );
            // A thread: each part replies to the one before it.
            let replies_to: Vec<Option<&str>> = sent
                .iter()
                .map(|(_, s)| s.in_reply_to_id.as_deref())
                .collect();
            assert_eq!(replies_to, [None, Some("1"), Some("2")], "{step:?}");
            let saved = restarted_thread(&store).1;
            let ids: Vec<Option<&str>> =
                saved.parts.iter().map(|p| p.status_id.as_deref()).collect();
            assert_eq!(
                ids,
                [Some("1"), Some("2"), Some("3")],
                "{step:?}: every id saved"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_stopped_at_any_step_is_out_once_after_a_restart() {
        for step in [Step::ReplyIntentSaved, Step::ReplyAccepted] {
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::new(dir.path());
            let network = Memory::new();
            stopped_at(step, &network, &store, &mut reply(), 1).await;
            let (mut state, mut delivery) = restarted_reply(&store);
            let part = engine(&network, &store, None)
                .part(&mut state, &mut delivery, 0, true, &[])
                .await
                .unwrap();
            match (step, part) {
                (Step::ReplyIntentSaved, Part::Sent(id))
                | (Step::ReplyAccepted, Part::Found(id)) => {
                    assert_eq!(id, "1", "{step:?}")
                }
                (step, part) => panic!("{step:?}: {part:?}"),
            }
            let sent = network.sent();
            assert_eq!(sent.len(), 1, "{step:?}: one reply");
            assert_eq!(sent[0].1.in_reply_to_id.as_deref(), Some("mention-status"));
            assert_eq!(sent[0].1.language.as_deref(), Some("en"));
            assert_eq!(sent[0].1.idempotency_key.as_deref(), Some("reply-key"));
        }
    }

    #[tokio::test]
    async fn an_answer_lost_after_the_network_acted_is_found_not_resent() {
        async fn lose_then_find(intent: &mut impl Intent) {
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::new(dir.path());
            let network = Memory::new();
            *network.lose_answers.lock().unwrap() = 1;
            let mut state = State::default();
            let engine = engine(&network, &store, None);
            engine.begin(&mut state, intent).await.unwrap();
            let part = engine
                .part(&mut state, intent, 0, false, &[])
                .await
                .unwrap();
            let Part::SendFailed(error) = part else {
                panic!("the answer was lost: {part:?}");
            };
            assert!(error.uncertain(), "{error}");
            found_again(&network, &store, &mut state, intent).await;
        }
        lose_then_find(&mut thread(1)).await;
        lose_then_find(&mut reply()).await;
    }

    /// Bluesky's way, through the same engine: the record key is chosen and saved before the
    /// first send, and after a crash the part is found by that key, not by a search.
    #[tokio::test(start_paused = true)]
    async fn a_network_that_names_its_records_finds_them_by_the_name_saved_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        // A post.
        let network = Memory::keyed();
        stopped_at(Step::Accepted(0), &network, &store, &mut thread(1), 1).await;
        let (mut state, mut intent) = restarted_thread(&store);
        assert_eq!(
            intent.after_status.as_deref(),
            Some("rkey-1"),
            "saved before the send"
        );
        found_again(&network, &store, &mut state, &mut intent).await;
        assert_eq!(network.sent()[0].1.prepared.as_deref(), Some("rkey-1"));
        // A reply.
        let network = Memory::keyed();
        stopped_at(Step::ReplyAccepted, &network, &store, &mut reply(), 1).await;
        let (mut state, mut delivery) = restarted_reply(&store);
        assert_eq!(
            delivery.intent.key.as_deref(),
            Some("rkey-1"),
            "saved before the send"
        );
        found_again(&network, &store, &mut state, &mut delivery).await;
        assert_eq!(network.sent()[0].1.prepared.as_deref(), Some("rkey-1"));
    }

    fn replier<'a>(
        network: &'a Memory,
        store: &'a StateStore,
        clock: &'a crate::daemon::clock::TokioClock,
        checkpoint: Option<&'a Checkpoint>,
    ) -> crate::daemon::mentions::Replier<'a> {
        crate::daemon::mentions::Replier {
            network,
            store,
            clock,
            checkpoint,
            language: Some("en"),
        }
    }

    /// Replies to `n` mentions, by alice, bob...
    fn replies(n: usize) -> Vec<ReplyIntent> {
        (0..n)
            .map(|i| ReplyIntent {
                notification: format!("n-{i}"),
                status: format!("mention-{i}"),
                acct: format!("user{i}"),
                idempotency_key: format!("reply-key-{i}"),
                ..reply().intent
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn replies_sent_together_overlap_and_are_written_down_in_the_journal_only() {
        use crate::daemon::mentions::ReplyOutcome;
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let network = Memory::new();
        let clock = crate::daemon::clock::TokioClock::starting_at(at());
        let mut state = State::default();
        let outcomes = replier(&network, &store, &clock, None)
            .send(&mut state, replies(4), 0)
            .await
            .unwrap();
        assert!(
            outcomes
                .iter()
                .all(|outcome| matches!(outcome, ReplyOutcome::Sent { .. })),
            "{outcomes:?}"
        );
        assert_eq!(network.most_in_flight(), 4, "the four requests overlap");
        assert_eq!(network.sent().len(), 4);
        assert!(state.mentions.pending.is_empty());
        assert_eq!(state.mentions.handled.len(), 4);
        // Four intents and four outcomes appended; the state file was not rewritten.
        assert_eq!(store.journaled(), 8);
        assert!(!store.path().exists(), "no whole-state save per reply");
        let restarted = store.load().unwrap().expect("the journal is read back");
        assert_eq!(restarted.mentions, state.mentions);
        // A save folds the journal into the state file and empties it.
        store.save(&state).unwrap();
        assert_eq!(std::fs::metadata(store.journal_path()).unwrap().len(), 0);
        assert_eq!(store.load().unwrap().unwrap().mentions, state.mentions);
    }

    #[tokio::test(start_paused = true)]
    async fn replies_stopped_together_at_any_step_are_each_out_once_after_a_restart() {
        for step in [Step::ReplyIntentSaved, Step::ReplyAccepted] {
            for lose in [0, 2] {
                let dir = tempfile::tempdir().unwrap();
                let store = StateStore::new(dir.path());
                let network = Memory::new();
                *network.lose_answers.lock().unwrap() = lose;
                let clock = crate::daemon::clock::TokioClock::starting_at(at());
                let checkpoint: Checkpoint = Arc::new(move |at| at == step);
                let mut state = State::default();
                let first = replier(&network, &store, &clock, Some(&checkpoint));
                let run = first.send(&mut state, replies(3), 0);
                assert!(tokio::time::timeout(PATIENCE, run).await.is_err());
                // A restart: what the files say.
                let mut state = store.load().unwrap().expect("the intents were written");
                assert_eq!(state.mentions.pending.len(), 3, "{step:?}");
                // Answers lost on the way back are tried again: looked for first.
                for attempt in 0..3 {
                    if state.mentions.pending.is_empty() {
                        break;
                    }
                    replier(&network, &store, &clock, None)
                        .resume(&mut state, attempt)
                        .await
                        .unwrap();
                }
                let mut answered: Vec<_> = network
                    .sent()
                    .into_iter()
                    .map(|(_, status)| status.in_reply_to_id.unwrap())
                    .collect();
                answered.sort();
                assert_eq!(
                    answered,
                    ["mention-0", "mention-1", "mention-2"],
                    "{step:?}, {lose} answers lost: each reply out once"
                );
                assert!(state.mentions.pending.is_empty());
                let after = store.load().unwrap().unwrap();
                assert!(after.mentions.pending.is_empty(), "{step:?}");
                assert_eq!(after.mentions.handled.len(), 3);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_journal_is_folded_into_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let network = Memory::new();
        let clock = crate::daemon::clock::TokioClock::starting_at(at());
        let mut state = State::default();
        let batches = crate::state::COMPACT_AT / 8 + 1;
        for batch in replies(batches * 4).chunks(4) {
            replier(&network, &store, &clock, None)
                .send(&mut state, batch.to_vec(), 0)
                .await
                .unwrap();
        }
        assert!(store.path().exists(), "saved once the journal was long");
        assert!(store.journaled() < crate::state::COMPACT_AT);
        let on_disk = std::fs::read_to_string(store.journal_path()).unwrap();
        assert_eq!(on_disk.lines().count(), store.journaled());
        assert_eq!(store.load().unwrap().unwrap().mentions, state.mentions);
    }
}
