//! Bounds on password checking, so a login flood can neither exhaust the agent's memory nor
//! guess passwords quickly.
//!
//! - [`PasswordWork`]: argon2 runs on a fixed pool of worker threads (each check holds ~19 MiB)
//!   fed by a short queue; when the queue is full the request is refused at once with 429
//!   instead of waiting. Fixed threads also keep the allocator from retaining a freed argon2
//!   buffer in one arena per short-lived blocking thread.
//! - [`Backoff`]: failed logins are counted per account (the name as typed, known or not, so a
//!   refusal says nothing about which names exist) and per client; after `maxFailures` within
//!   `window`, that account or client gets 429 with `Retry-After` until the window has passed,
//!   even with the right password. Both tables are capped and forget expired entries.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::oneshot;

use argon2::password_hash::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::auth::hash_password;
use crate::config::LoginLimits;

/// Password checks running at once (each holds argon2's 19 MiB).
pub const WORKERS: usize = 2;
/// Checks waiting for a worker; more are refused with 429.
pub const QUEUE: usize = 8;
/// Entries each backoff table keeps at most.
pub const TABLE_CAP: usize = 4096;

/// All workers are busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

enum Job {
    Verify {
        /// `None`: the dummy hash (an unknown user).
        hash: Option<String>,
        password: String,
        reply: oneshot::Sender<bool>,
    },
}

/// The argon2 worker pool. Dropping it ends the workers once their queue is drained.
pub struct PasswordWork {
    jobs: SyncSender<Job>,
}

impl PasswordWork {
    pub fn new(workers: usize, queue: usize) -> PasswordWork {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut scratch = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A client that gave up costs nothing more.
                            Ok(Job::Verify {
                                hash,
                                password,
                                reply,
                            }) => {
                                if !reply.is_closed() {
                                    let hash = hash.unwrap_or_else(dummy_hash);
                                    let _ = reply.send(verify_with(&mut scratch, &hash, &password));
                                }
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password worker");
            }
        }
        PasswordWork { jobs }
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Whether `password` matches the PHC string `hash` (false for a malformed hash). `None`
    /// checks against a hash nobody knows the password of, at the same cost.
    pub async fn verify(&self, hash: Option<String>, password: String) -> Result<bool, Busy> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify {
            hash,
            password,
            reply,
        })?;
        rx.await.map_err(|_| Busy)
    }
}

/// The most argon2 memory a stored hash may ask for, in 1 KiB blocks (64 MiB); the agent's own
/// hashes use 19 MiB.
const MAX_BLOCKS: usize = 64 * 1024;

/// Checks `password` against the PHC string `stored` in the worker's own argon2 memory, which is
/// allocated once and reused: a fresh 19 MiB (64-byte aligned) buffer per check left the
/// allocator holding every copy (10 checks grew the agent by 190 MiB). The comparison is
/// constant-time (`Output`'s equality). Anything malformed is a mismatch.
fn verify_with(scratch: &mut Vec<Block>, stored: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if scratch.len() < blocks {
        scratch.resize(blocks, Block::default());
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut scratch[..blocks])
        .is_err()
    {
        return false;
    }
    Output::new(out).is_ok_and(|computed| computed == expected)
}

/// An argon2id hash of a random string nobody knows, computed once (on a worker thread).
fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let secret = format!("{:x}", rand::random::<u128>());
        hash_password(&secret).unwrap_or_default()
    })
    .clone()
}

/// Failures of one key: counted while each comes within `window` of the one before, so a lock
/// lasts one window from the failure that completed the count.
#[derive(Debug, Clone, Copy)]
struct Failures {
    last: Instant,
    count: u32,
}

/// One capped table of failure counts.
#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Failures>,
}

impl Table {
    /// Time left until `key` may try again, if it is locked.
    fn locked(&self, key: &str, limits: &LoginLimits, now: Instant) -> Option<Duration> {
        let f = self.entries.get(key)?;
        let end = f.last + limits.window;
        (f.count >= limits.max_failures && end > now).then(|| end - now)
    }

    fn fail(&mut self, key: &str, limits: &LoginLimits, now: Instant) {
        if !self.entries.contains_key(key) && self.entries.len() >= TABLE_CAP {
            self.entries
                .retain(|_, f| now.duration_since(f.last) < limits.window);
            if self.entries.len() >= TABLE_CAP {
                // Still full of live entries: the oldest window is the least useful to keep.
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        let f = self.entries.entry(key.to_string()).or_insert(Failures {
            last: now,
            count: 0,
        });
        if now.duration_since(f.last) >= limits.window {
            f.count = 0;
        }
        f.last = now;
        f.count = f.count.saturating_add(1);
    }

    fn clear(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// Per-account and per-client failed-login counts.
#[derive(Debug)]
pub struct Backoff {
    limits: LoginLimits,
    tables: Mutex<(Table, Table)>,
}

impl Backoff {
    pub fn new(limits: LoginLimits) -> Backoff {
        Backoff {
            limits,
            tables: Mutex::new((Table::default(), Table::default())),
        }
    }

    /// Time left until this account or client may try again, if either is locked.
    pub fn locked(&self, account: &str, client: &str) -> Option<Duration> {
        let now = Instant::now();
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let a = tables.0.locked(&account_key(account), &self.limits, now);
        let c = tables.1.locked(client, &self.limits, now);
        a.max(c)
    }

    pub fn failed(&self, account: &str, client: &str) {
        let now = Instant::now();
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.0.fail(&account_key(account), &self.limits, now);
        tables.1.fail(client, &self.limits, now);
    }

    /// A successful login clears the account's count (the client's stays: one valid account
    /// must not reset the count of guesses at others).
    pub fn succeeded(&self, account: &str) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.0.clear(&account_key(account));
    }

    /// Entries held (for tests of the cap).
    pub fn len(&self) -> (usize, usize) {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        (tables.0.entries.len(), tables.1.entries.len())
    }
}

fn account_key(name: &str) -> String {
    name.to_lowercase()
}

/// Everything the login handler needs, shared by the agent's listeners.
pub struct LoginGuard {
    pub work: PasswordWork,
    pub backoff: Backoff,
}

impl LoginGuard {
    pub fn new(limits: LoginLimits) -> Arc<LoginGuard> {
        Arc::new(LoginGuard {
            work: PasswordWork::new(WORKERS, QUEUE),
            backoff: Backoff::new(limits),
        })
    }
}

/// The key of a client: behind the proxy (a loopback peer) the address the proxy puts in
/// `X-Real-Ip`, else the peer itself. IPv6 clients are counted per /64, which one home or
/// device usually owns entirely.
pub fn client_key(peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    let peer_ip = peer.map(|p| p.ip().to_canonical());
    let ip = match peer_ip {
        Some(ip) if ip.is_loopback() => headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .unwrap_or(ip),
        Some(ip) => ip,
        None => return "local".to_string(),
    };
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn limits() -> LoginLimits {
        LoginLimits {
            max_failures: 3,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn accounts_and_clients_lock_after_max_failures_for_the_window() {
        let b = Backoff::new(limits());
        for _ in 0..2 {
            b.failed("Alice", "10.0.0.1");
        }
        assert_eq!(b.locked("alice", "10.0.0.9"), None);
        b.failed("alice", "10.0.0.2");
        // The account is locked from any client, the name in any case.
        let left = b.locked("ALICE", "10.0.0.9").unwrap();
        assert!(left > Duration::from_secs(59) && left <= Duration::from_secs(60));
        assert_eq!(b.locked("bob", "10.0.0.9"), None);
        // Three failures from one client at three names lock the client.
        for name in ["u1", "u2", "u3"] {
            b.failed(name, "10.0.0.7");
        }
        assert!(b.locked("carol", "10.0.0.7").is_some());
        // Success clears the account, not the client.
        b.succeeded("alice");
        assert_eq!(b.locked("alice", "10.0.0.9"), None);
        assert!(b.locked("dave", "10.0.0.7").is_some());
    }

    #[test]
    fn windows_expire() {
        let mut t = Table::default();
        let l = limits();
        let start = Instant::now();
        for _ in 0..3 {
            t.fail("k", &l, start);
        }
        assert!(t.locked("k", &l, start + Duration::from_secs(59)).is_some());
        assert_eq!(t.locked("k", &l, start + Duration::from_secs(60)), None);
        // A failure after the window starts a new count.
        t.fail("k", &l, start + Duration::from_secs(61));
        assert_eq!(t.locked("k", &l, start + Duration::from_secs(62)), None);
    }

    #[test]
    fn tables_stay_bounded() {
        let b = Backoff::new(limits());
        for i in 0..(TABLE_CAP + 500) {
            b.failed(
                &format!("user{i}"),
                &format!("10.0.{}.{}", i / 256, i % 256),
            );
        }
        let (a, c) = b.len();
        assert!(a <= TABLE_CAP && c <= TABLE_CAP, "{a} {c}");
    }

    #[test]
    fn client_keys() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lan: SocketAddr = "192.168.1.20:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(client_key(Some(lo), &h), "127.0.0.1");
        h.insert("x-real-ip", HeaderValue::from_static("192.168.1.30"));
        // Behind the proxy: the proxy's header; from the LAN directly: the peer, header ignored.
        assert_eq!(client_key(Some(lo), &h), "192.168.1.30");
        assert_eq!(client_key(Some(lan), &h), "192.168.1.20");
        h.insert(
            "x-real-ip",
            HeaderValue::from_static("2001:db8:1:2:3:4:5:6"),
        );
        assert_eq!(client_key(Some(lo), &h), "2001:db8:1:2::/64");
        h.insert("x-real-ip", HeaderValue::from_static("not an address"));
        assert_eq!(client_key(Some(lo), &h), "127.0.0.1");
    }

    #[test]
    fn verification_matches_the_argon2_crate() {
        let hash = hash_password("correct horse").unwrap();
        let mut scratch = Vec::new();
        assert!(verify_with(&mut scratch, &hash, "correct horse"));
        assert!(!verify_with(&mut scratch, &hash, "wrong horse"));
        assert!(!verify_with(&mut scratch, "not a hash", "correct horse"));
        // Reused memory gives the same answers.
        assert!(verify_with(&mut scratch, &hash, "correct horse"));
        assert_eq!(scratch.len(), Params::DEFAULT.block_count());
        // A stored hash asking for more than the cap is refused, not computed.
        let huge = hash.replace("m=19456", "m=4000000");
        assert!(!verify_with(&mut scratch, &huge, "correct horse"));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let work = PasswordWork::new(1, 1);
        let hash = hash_password("correct horse").unwrap();
        assert_eq!(
            work.verify(Some(hash.clone()), "correct horse".into())
                .await,
            Ok(true)
        );
        assert_eq!(work.verify(None, "correct horse".into()).await, Ok(false));
        let attempts: Vec<_> = (0..8)
            .map(|_| work.verify(Some(hash.clone()), "wrong".into()))
            .collect();
        let results = futures_util::future::join_all(attempts).await;
        assert!(results.contains(&Err(Busy)), "{results:?}");
        assert!(results.contains(&Ok(false)), "{results:?}");
    }
}
