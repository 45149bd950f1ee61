//! MQTT sink: Frigate-compatible events, counts, per-frame detections, stats and Home Assistant
//! discovery (what to publish: [`events`]), over `rumqttc`.
//!
//! Threads and queues (why `publish` never blocks the pipeline):
//! - The pipeline thread turns frames into [`Message`]s and hands them to rumqttc's bounded
//!   request channel with `try_publish` only.
//! - When that channel is full (broker slow or down), messages wait in our own bounded queue
//!   (`queue_capacity`), oldest dropped first and counted by [`Sink::dropped`]. The queue is
//!   retried, in order, before anything newer on every `publish`/`stats` call and by the
//!   connection thread after every event, so it drains even when the pipeline is idle and a
//!   message never overtakes an older queued one.
//! - A connection thread drives rumqttc's event loop. rumqttc reconnects by itself as long as
//!   it is polled; after an error we sleep with exponential backoff (100 ms doubling up to
//!   `max_backoff`). On every CONNACK it re-publishes the birth messages (discovery configs,
//!   then `online`). It too uses `try_publish` only: a blocking publish from the thread that
//!   polls the connection deadlocks when the channel is full, since only that thread drains it.
//! - When the connection drops, rumqttc moves the publishes it had not got acks for, and the
//!   requests still in its channel, to its `pending` list, and *clears* that list if the next
//!   CONNACK has no session (clean session, or a broker restarted without persistence). So on
//!   every connection error we take those publishes back into our queue, ahead of what is
//!   queued there, and they are re-sent as new publishes once connected: with QoS ≥ 1 nothing
//!   is lost (duplicates are possible: at least once) while the backlog stays within
//!   `queue_capacity`; beyond it the oldest are dropped and counted.
//! - `close` publishes the `end`s, zero counts and `offline`, then waits up to
//!   `close_timeout` for them and a clean DISCONNECT (so the broker does not send the will).

pub mod events;

pub use events::{
    topic_level, DiscoveryConfig, EventObject, EventState, EventsConfig, EventsError, Message, Qos,
};

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{Client, ClientError, Connection, Event, LastWill, MqttOptions, Outgoing, Packet};

use crate::pipeline::{FrameResult, PipelineStats};
use crate::sinks::{Sink, SinkError};

/// Largest packet we send or accept. Bigger messages are dropped (and counted) rather than
/// handed to rumqttc, which would fail the whole connection on them.
pub const MAX_PACKET_SIZE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("mqtt url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("mqtt url {url:?}: TLS needs spotter built with the `mqtt-tls` cargo feature")]
    TlsDisabled { url: String },
    #[error("mqtt CA file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mqtt option {option}: {why}")]
    BadOption { option: &'static str, why: String },
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error("mqtt: cannot start the connection thread: {0}")]
    Thread(std::io::Error),
}

/// Where the broker is, from `mqtt://host[:port]` (also `tcp://`) or `mqtts://host[:port]`
/// (also `ssl://`). Default ports 1883 and 8883. IPv6 hosts in brackets: `mqtt://[::1]:1883`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddress {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

pub fn parse_url(url: &str) -> Result<BrokerAddress, MqttError> {
    let bad = |why: &str| MqttError::BadUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected mqtt://host[:port] or mqtts://host[:port]"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        _ => return Err(bad("unknown scheme; expected mqtt, tcp, mqtts or ssl")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(bad(
            "credentials in the url are not supported; use the username/password options",
        ));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(bad("expected no path or query after host[:port]"));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' in IPv6 host"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':port' after ']'"))?,
                ),
            ),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("expected a host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("port: expected a number 1..=65535"))?,
    };
    Ok(BrokerAddress {
        tls,
        host: host.to_string(),
        port,
    })
}

/// Sink options.
#[derive(Clone, Debug)]
pub struct MqttConfig {
    /// `mqtt://host:port` or `mqtts://host:port` (see [`parse_url`]).
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Must be unique per broker; required (non-empty) with `clean_session = false`.
    pub client_id: String,
    /// 0 disables keep-alive; otherwise at least 1 s.
    pub keep_alive: Duration,
    /// `false`: the broker keeps our session (and QoS ≥ 1 in-flight state) across reconnects.
    pub clean_session: bool,
    /// PEM CA certificate(s) for `mqtts://` (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Bound of our own queue behind rumqttc's channel (drop-oldest when full).
    pub queue_capacity: usize,
    /// Capacity of rumqttc's request channel (at least 1).
    pub channel_capacity: usize,
    /// Longest sleep between reconnect attempts.
    pub max_backoff: Duration,
    /// How long `close` waits for queued messages and the DISCONNECT.
    pub close_timeout: Duration,
    /// Topics and what to publish (QoS is `events.qos`).
    pub events: EventsConfig,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://localhost:1883".into(),
            username: None,
            password: None,
            client_id: "spotter".into(),
            keep_alive: Duration::from_secs(30),
            clean_session: true,
            ca_file: None,
            queue_capacity: 1000,
            channel_capacity: 64,
            max_backoff: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            events: EventsConfig::default(),
        }
    }
}

fn to_rumqttc(q: Qos) -> rumqttc::QoS {
    match q {
        Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
        Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

fn from_rumqttc(q: rumqttc::QoS) -> Qos {
    match q {
        rumqttc::QoS::AtMostOnce => Qos::AtMostOnce,
        rumqttc::QoS::AtLeastOnce => Qos::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

/// Hands `m` to rumqttc without blocking; gives it back if the channel is full (or closed).
fn try_send(client: &Client, m: Message) -> Result<(), Message> {
    match client.try_publish(m.topic, to_rumqttc(m.qos), m.retain, m.payload) {
        Ok(()) => Ok(()),
        Err(ClientError::TryRequest(rumqttc::Request::Publish(p)))
        | Err(ClientError::Request(rumqttc::Request::Publish(p))) => Err(Message {
            payload: String::from_utf8_lossy(&p.payload).into_owned(),
            topic: p.topic,
            retain: p.retain,
            qos: from_rumqttc(p.qos),
        }),
        // Only publish requests are sent here, so other requests cannot come back; if they
        // did there is nothing to retry.
        Err(_) => Ok(()),
    }
}

/// Our bounded queue behind rumqttc's channel. Policy: drop oldest.
#[derive(Debug)]
struct Outbox {
    queue: VecDeque<Message>,
    capacity: usize,
    /// Dropped by the drop-oldest policy, or because a message could never be sent.
    dropped: u64,
    /// Set by `close` under the same lock as it queues `offline`, so a reconnect's births
    /// (`online`) can never be queued after it.
    closing: bool,
}

impl Outbox {
    fn push(&mut self, m: Message) {
        if self.capacity == 0 {
            self.dropped += 1;
            return;
        }
        while self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(m);
    }

    /// Put `msgs` (older than everything queued, oldest first) at the front of the queue; if the
    /// queue is then over its bound, the oldest are dropped and counted.
    fn requeue_front(&mut self, msgs: Vec<Message>) {
        for m in msgs.into_iter().rev() {
            self.queue.push_front(m);
        }
        while self.queue.len() > self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
        }
    }

    /// Moves queued messages into the channel, oldest first, until it is full.
    fn flush(&mut self, client: &Client) {
        while let Some(m) = self.queue.pop_front() {
            if let Err(m) = try_send(client, m) {
                self.queue.push_front(m);
                return;
            }
        }
    }

    /// Retries the queue, then sends or queues `msgs` in order. Messages that can never be
    /// sent (too large, invalid topic) are dropped and counted.
    fn enqueue(&mut self, client: &Client, msgs: Vec<Message>) {
        self.flush(client);
        for m in msgs {
            // Fixed header (≤ 5) + topic length (2) + packet id (2).
            if m.topic.len() + m.payload.len() + 9 > MAX_PACKET_SIZE {
                log::warn!(
                    "mqtt: dropping {} byte message on {}: larger than {MAX_PACKET_SIZE}",
                    m.payload.len(),
                    m.topic
                );
                self.dropped += 1;
                continue;
            }
            if !rumqttc::valid_topic(&m.topic) {
                log::warn!("mqtt: dropping message on invalid topic {:?}", m.topic);
                self.dropped += 1;
                continue;
            }
            self.send(client, m);
        }
    }

    /// Queue `m` behind older messages, or send it straight away if none wait.
    fn send(&mut self, client: &Client, m: Message) {
        if self.queue.is_empty() {
            if let Err(m) = try_send(client, m) {
                self.push(m);
            }
        } else {
            self.push(m);
        }
    }
}

/// State shared by the sink and its connection thread.
#[derive(Debug)]
struct Shared {
    outbox: Mutex<Outbox>,
    births: Mutex<Vec<Message>>,
    stop: AtomicBool,
    connected: AtomicBool,
    connects: AtomicU64,
}

/// A poisoned lock only means another thread panicked mid-update of plain data; carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Drives the event loop until DISCONNECT was sent and acknowledged (see below), `stop` is set,
/// or every client is gone.
fn run_connection(
    mut conn: Connection,
    client: Client,
    shared: Arc<Shared>,
    max_backoff: Duration,
) {
    let mut backoff = MIN_BACKOFF;
    let mut errors_in_a_row = 0u32;
    let mut disconnecting = false;
    loop {
        match conn.recv() {
            // All `Client`s dropped and the channel drained.
            Err(_) => break,
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                backoff = MIN_BACKOFF;
                errors_in_a_row = 0;
                shared.connected.store(true, Ordering::SeqCst);
                let n = shared.connects.fetch_add(1, Ordering::SeqCst) + 1;
                log::info!(
                    "mqtt: connected (connection {n}, session present: {})",
                    ack.session_present
                );
                // Never block here: this thread is the one that drains the channel.
                let births = lock(&shared.births).clone();
                let mut outbox = lock(&shared.outbox);
                if !outbox.closing {
                    for m in births {
                        if let Err(m) = try_send(&client, m) {
                            outbox.push(m);
                        }
                    }
                }
            }
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => disconnecting = true,
            Ok(Ok(_)) => {
                // The event loop pulled a request or got an ack: refill the channel from our
                // queue, so queued messages drain even while the pipeline publishes nothing.
                let mut outbox = lock(&shared.outbox);
                if !outbox.queue.is_empty() {
                    outbox.flush(&client);
                }
            }
            Ok(Err(e)) => {
                shared.connected.store(false, Ordering::SeqCst);
                // After our DISCONNECT the broker closes the connection: done, do not
                // reconnect.
                if disconnecting || shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                requeue_unacked(&mut conn.eventloop.pending, &shared);
                // Log the first failure of a streak and then every 10th, not every retry.
                if errors_in_a_row.checked_rem(10) == Some(0) {
                    log::warn!("mqtt: connection error (retrying in {backoff:?}): {e}");
                }
                errors_in_a_row = errors_in_a_row.saturating_add(1);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(max_backoff.max(MIN_BACKOFF));
            }
        }
        // Closing the socket while QoS ≥ 1 publishes still await their acks makes mosquitto
        // fail writing the ack and drop the rest of what we sent, DISCONNECT included (it then
        // publishes the will). So after DISCONNECT we keep reading until every ack is in or
        // the broker closes the connection.
        if disconnecting && conn.eventloop.state.inflight() == 0 {
            break;
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
    }
    shared.connected.store(false, Ordering::SeqCst);
}

/// After a connection error: move the publishes rumqttc holds in `pending` (un-acked in-flight
/// ones and those drained from its channel) back into our queue, in order, so a CONNACK without
/// a session cannot discard them (see the module documentation). Other requests (PUBREL of
/// QoS 2) stay with rumqttc.
fn requeue_unacked(pending: &mut VecDeque<rumqttc::Request>, shared: &Shared) {
    if pending.is_empty() {
        return;
    }
    let mut publishes = Vec::new();
    let mut kept = VecDeque::new();
    for r in pending.drain(..) {
        match r {
            rumqttc::Request::Publish(p) => publishes.push(Message {
                payload: String::from_utf8_lossy(&p.payload).into_owned(),
                topic: p.topic,
                retain: p.retain,
                qos: from_rumqttc(p.qos),
            }),
            other => kept.push_back(other),
        }
    }
    *pending = kept;
    if !publishes.is_empty() {
        log::debug!(
            "mqtt: {} unacknowledged messages queued again for after the reconnect",
            publishes.len()
        );
        lock(&shared.outbox).requeue_front(publishes);
    }
}

/// See the module documentation.
pub struct MqttSink {
    name: String,
    url: String,
    client: Client,
    shared: Arc<Shared>,
    events: EventState,
    thread: Option<JoinHandle<()>>,
    close_timeout: Duration,
    closed: bool,
}

impl std::fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSink")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl MqttSink {
    /// Validates `config`, starts the connection thread and queues the start messages. Does
    /// not wait for the broker: an unreachable broker is retried in the background.
    pub fn new(config: MqttConfig) -> Result<Self, MqttError> {
        let addr = parse_url(&config.url)?;
        let mut events = EventState::new(config.events.clone())?;

        if !config.keep_alive.is_zero() && config.keep_alive < Duration::from_secs(1) {
            return Err(MqttError::BadOption {
                option: "keep_alive",
                why: format!("{:?}: expected 0 (off) or at least 1 s", config.keep_alive),
            });
        }
        if config.client_id.is_empty() && !config.clean_session {
            return Err(MqttError::BadOption {
                option: "client_id",
                why: "expected a non-empty client id with clean_session = false".into(),
            });
        }
        if config.channel_capacity == 0 {
            return Err(MqttError::BadOption {
                option: "channel_capacity",
                why: "expected at least 1".into(),
            });
        }
        if config.ca_file.is_some() && !addr.tls {
            return Err(MqttError::BadOption {
                option: "ca_file",
                why: format!("given for {}, which is not mqtts://", config.url),
            });
        }

        let mut opts = MqttOptions::new(config.client_id.clone(), addr.host.clone(), addr.port);
        opts.set_keep_alive(config.keep_alive);
        opts.set_clean_session(config.clean_session);
        opts.set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
        match (&config.username, &config.password) {
            (Some(u), p) => {
                opts.set_credentials(u.clone(), p.clone().unwrap_or_default());
            }
            (None, Some(_)) => {
                return Err(MqttError::BadOption {
                    option: "password",
                    why: "given without a username".into(),
                })
            }
            (None, None) => {}
        }
        let will = events.last_will();
        opts.set_last_will(LastWill::new(
            will.topic,
            will.payload,
            to_rumqttc(will.qos),
            will.retain,
        ));
        if addr.tls {
            set_tls(&mut opts, &config)?;
        }

        let (client, connection) = Client::new(opts, config.channel_capacity);
        let shared = Arc::new(Shared {
            outbox: Mutex::new(Outbox {
                queue: VecDeque::new(),
                capacity: config.queue_capacity,
                dropped: 0,
                closing: false,
            }),
            births: Mutex::new(events.birth_messages()),
            stop: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
        });
        events.take_births_changed();

        let thread = {
            let (client, shared) = (client.clone(), shared.clone());
            let max_backoff = config.max_backoff;
            std::thread::Builder::new()
                .name("mqtt-connection".into())
                .spawn(move || run_connection(connection, client, shared, max_backoff))
                .map_err(MqttError::Thread)?
        };

        let mut sink = MqttSink {
            name: format!("mqtt {}", config.url),
            url: config.url,
            client,
            shared,
            events,
            thread: Some(thread),
            close_timeout: config.close_timeout,
            closed: false,
        };
        let start = sink.events.start();
        sink.enqueue(start);
        Ok(sink)
    }

    /// Connected to the broker right now (as of the last event the connection thread saw).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Successful connections so far (1 after the first CONNACK, +1 per reconnect).
    pub fn connects(&self) -> u64 {
        self.shared.connects.load(Ordering::SeqCst)
    }

    /// Messages waiting in our own queue (not counting rumqttc's channel).
    pub fn queued(&self) -> usize {
        lock(&self.shared.outbox).queue.len()
    }

    pub fn events(&self) -> &EventState {
        &self.events
    }

    fn enqueue(&mut self, msgs: Vec<Message>) {
        lock(&self.shared.outbox).enqueue(&self.client, msgs);
    }

    /// Waits (sleeping) until `done` or `deadline`; true if done.
    fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(feature = "mqtt-tls")]
fn set_tls(opts: &mut MqttOptions, config: &MqttConfig) -> Result<(), MqttError> {
    let transport = match &config.ca_file {
        Some(path) => {
            let ca = std::fs::read(path).map_err(|source| MqttError::CaFile {
                path: path.clone(),
                source,
            })?;
            rumqttc::Transport::tls(ca, None, None)
        }
        None => rumqttc::Transport::tls_with_default_config(),
    };
    opts.set_transport(transport);
    Ok(())
}

#[cfg(not(feature = "mqtt-tls"))]
fn set_tls(_opts: &mut MqttOptions, config: &MqttConfig) -> Result<(), MqttError> {
    Err(MqttError::TlsDisabled {
        url: config.url.clone(),
    })
}

impl Sink for MqttSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn publish(&mut self, frame: &FrameResult) -> Result<(), SinkError> {
        let msgs = self.events.frame(frame);
        if self.events.take_births_changed() {
            *lock(&self.shared.births) = self.events.birth_messages();
        }
        self.enqueue(msgs);
        Ok(())
    }

    fn stats(&mut self, stats: &PipelineStats) -> Result<(), SinkError> {
        let m = self.events.stats(stats, self.dropped());
        self.enqueue(vec![m]);
        Ok(())
    }

    /// Publishes the `end`s, zero counts and `offline`, then waits up to `close_timeout` for
    /// them to reach rumqttc and for a clean DISCONNECT. Fails (naming the broker) if that did
    /// not happen in time, e.g. because the broker is down.
    fn close(&mut self) -> Result<(), SinkError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let msgs = self.events.close();
        {
            let mut outbox = lock(&self.shared.outbox);
            outbox.closing = true;
            outbox.enqueue(&self.client, msgs);
        }

        let deadline = Instant::now() + self.close_timeout;
        let client = self.client.clone();
        let shared = self.shared.clone();
        let flushed = Self::wait_until(deadline, || {
            let mut outbox = lock(&shared.outbox);
            outbox.flush(&client);
            outbox.queue.is_empty()
        });
        // The DISCONNECT queues behind everything already in the channel, so the connection
        // thread sees it go out only after those messages.
        let disconnect_queued =
            flushed && Self::wait_until(deadline, || client.try_disconnect().is_ok());
        let thread_done = Self::wait_until(deadline, || {
            self.thread
                .as_ref()
                .map(|t| t.is_finished())
                .unwrap_or(true)
        });
        self.shared.stop.store(true, Ordering::SeqCst);
        if thread_done {
            if let Some(t) = self.thread.take() {
                if t.join().is_err() {
                    log::error!("mqtt: connection thread panicked");
                }
            }
        }
        // Otherwise the thread exits at its next event (at most a keep-alive or a reconnect
        // attempt away); it is not joined.
        if flushed && disconnect_queued && thread_done {
            Ok(())
        } else {
            let left = lock(&self.shared.outbox).queue.len();
            Err(SinkError::Failed {
                sink: self.name.clone(),
                what: format!(
                    "no clean disconnect from {} within {:?} ({left} messages still queued; \
                     the broker may be unreachable)",
                    self.url, self.close_timeout
                ),
            })
        }
    }

    fn dropped(&self) -> u64 {
        lock(&self.shared.outbox).dropped
    }

    fn kind(&self) -> &'static str {
        "mqtt"
    }

    /// Our own bounded queue (see [`MqttSink::queued`]); rumqttc's channel is not counted.
    fn queue_depth(&self) -> u64 {
        self.queued() as u64
    }
}

impl Drop for MqttSink {
    /// Without `close`, only tells the connection thread to stop (never blocks); the broker
    /// then publishes the will (`offline`).
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> Message {
        Message {
            topic: "t".into(),
            payload: n.to_string(),
            retain: false,
            qos: Qos::AtLeastOnce,
        }
    }

    #[test]
    fn requeued_unacked_messages_go_first_and_respect_the_bound() {
        let mut o = Outbox {
            queue: VecDeque::new(),
            capacity: 4,
            dropped: 0,
            closing: false,
        };
        o.push(msg(3));
        o.push(msg(4));
        o.requeue_front(vec![msg(1), msg(2)]);
        let order: Vec<String> = o.queue.iter().map(|m| m.payload.clone()).collect();
        assert_eq!(order, ["1", "2", "3", "4"]);
        assert_eq!(o.dropped, 0);
        // Over the bound: the oldest go, counted.
        o.requeue_front(vec![msg(0)]);
        assert_eq!(o.queue.front().map(|m| m.payload.as_str()), Some("1"));
        assert_eq!((o.queue.len(), o.dropped), (4, 1));
    }

    #[test]
    fn urls() {
        let a = |tls, host: &str, port| BrokerAddress {
            tls,
            host: host.into(),
            port,
        };
        assert_eq!(
            parse_url("mqtt://localhost").unwrap(),
            a(false, "localhost", 1883)
        );
        assert_eq!(
            parse_url("mqtt://10.0.0.2:1884/").unwrap(),
            a(false, "10.0.0.2", 1884)
        );
        assert_eq!(parse_url("tcp://broker:1").unwrap(), a(false, "broker", 1));
        assert_eq!(parse_url("mqtts://b").unwrap(), a(true, "b", 8883));
        assert_eq!(parse_url("ssl://b:9").unwrap(), a(true, "b", 9));
        assert_eq!(
            parse_url("mqtt://[::1]:1999").unwrap(),
            a(false, "::1", 1999)
        );
        assert_eq!(parse_url("mqtt://[::1]").unwrap(), a(false, "::1", 1883));
        for bad in [
            "localhost:1883",
            "http://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://h:x",
            "mqtt://u:p@h",
            "mqtt://h/topic",
            "mqtt://[::1",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn outbox_drops_oldest() {
        let mut o = Outbox {
            queue: VecDeque::new(),
            capacity: 2,
            dropped: 0,
            closing: false,
        };
        let m = |p: &str| Message {
            topic: "t".into(),
            payload: p.into(),
            retain: false,
            qos: Qos::AtLeastOnce,
        };
        o.push(m("a"));
        o.push(m("b"));
        o.push(m("c"));
        assert_eq!(o.dropped, 1);
        let left: Vec<&str> = o.queue.iter().map(|m| m.payload.as_str()).collect();
        assert_eq!(left, vec!["b", "c"]);
    }

    #[test]
    fn bad_options_are_rejected_without_connecting() {
        let bad = |c: MqttConfig| MqttSink::new(c).unwrap_err().to_string();
        let e = bad(MqttConfig {
            keep_alive: Duration::from_millis(500),
            ..MqttConfig::default()
        });
        assert!(e.contains("keep_alive"), "{e}");
        let e = bad(MqttConfig {
            client_id: String::new(),
            clean_session: false,
            ..MqttConfig::default()
        });
        assert!(e.contains("client_id"), "{e}");
        let e = bad(MqttConfig {
            password: Some("x".into()),
            ..MqttConfig::default()
        });
        assert!(e.contains("password"), "{e}");
        let e = bad(MqttConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..MqttConfig::default()
        });
        assert!(e.contains("ca_file"), "{e}");
        #[cfg(not(feature = "mqtt-tls"))]
        {
            let e = bad(MqttConfig {
                url: "mqtts://h".into(),
                ..MqttConfig::default()
            });
            assert!(e.contains("mqtt-tls"), "{e}");
        }
        #[cfg(feature = "mqtt-tls")]
        {
            let e = bad(MqttConfig {
                url: "mqtts://h".into(),
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..MqttConfig::default()
            });
            assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        }
    }
}
