//! The node's cache of what nearly every request reads: the session behind a cookie, the principal (account and
//! roles) behind a session, and an organisation's active services. Without it an authenticated page costs four
//! database round trips before it renders anything (ADR 0005).
//!
//! It stays exact by invalidation, not by expiry: every change to those rows names what it touched
//! ([`Tx::changed`] inside a transaction, [`changed`] after a single statement). On commit the node evicts the
//! entries at once; on PostgreSQL the same names go to every other node by `NOTIFY` inside the changing transaction,
//! so they arrive exactly when the change becomes visible. A node whose `LISTEN` connection is down stops using its
//! cache (every read goes to the database) until the connection is back and the cache has been emptied.
//! A load that raced with an invalidation is not stored (the epoch check). Entries also expire after
//! [`TTL`], a backstop for a change made by hand in the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::authz::Principal;
use crate::db::{Db, DbResult, Tx};
use crate::identity::session::{self, Session};
use crate::ids::{AccountId, OrgId, SessionId};

/// The longest an entry is served without being read again from the database.
pub const TTL: Duration = Duration::from_secs(60);
/// The PostgreSQL channel that carries invalidations between nodes.
pub const CHANNEL: &str = "agilekit_cache";

/// What a change touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// One session (its organisation, language, second factor or its end).
    Session(SessionId),
    /// An account: its profile, roles, password, second factor, and all of its sessions.
    Account(AccountId),
    /// An organisation: its name (shown in every member's switcher) and its services.
    Org(OrgId),
    /// Everything (the catalogue changed, or an invalidation may have been missed).
    All,
}

impl Topic {
    fn encode(self) -> String {
        match self {
            Topic::Session(id) => format!("s:{}", id.0),
            Topic::Account(id) => format!("a:{}", id.0),
            Topic::Org(id) => format!("o:{}", id.0),
            Topic::All => "*".into(),
        }
    }

    fn decode(s: &str) -> Topic {
        let parse = |rest: &str| uuid::Uuid::parse_str(rest).ok();
        match s.split_once(':') {
            Some(("s", rest)) => parse(rest).map(|u| Topic::Session(SessionId(u))),
            Some(("a", rest)) => parse(rest).map(|u| Topic::Account(AccountId(u))),
            Some(("o", rest)) => parse(rest).map(|u| Topic::Org(OrgId(u))),
            _ => None,
        }
        .unwrap_or(Topic::All)
    }
}

struct Entry<T> {
    value: T,
    at: Instant,
}

impl<T: Clone> Entry<T> {
    fn fresh(&self) -> Option<T> {
        (self.at.elapsed() < TTL).then(|| self.value.clone())
    }
}

/// One node's cache. Cheap to share (`Arc`); create it with [`NodeCache::new`].
pub struct NodeCache {
    /// By the SHA-256 of the session token.
    sessions: RwLock<HashMap<String, Entry<Session>>>,
    principals: RwLock<HashMap<AccountId, Entry<Principal>>>,
    services: RwLock<HashMap<OrgId, Entry<Vec<String>>>>,
    /// Bumped by every invalidation: a load that started before it is not stored.
    epoch: AtomicU64,
    /// False while invalidations from other nodes could be missed (PostgreSQL listener down).
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// How many times the PostgreSQL listener has (re)subscribed.
    subscribed: AtomicU64,
}

/// Every cache of this process, so that a commit anywhere in it evicts synchronously (a process normally has one
/// node; the test suite runs many servers in one process, and evicting another server's entry is harmless).
static NODES: Mutex<Vec<Weak<NodeCache>>> = Mutex::new(Vec::new());

impl NodeCache {
    /// A cache for a node on `db`. On SQLite it is live at once (one node, every change passes through this
    /// process); on PostgreSQL it becomes live when [`listen`] has subscribed.
    pub fn new(db: &Db) -> Arc<NodeCache> {
        let c = Arc::new(NodeCache {
            sessions: RwLock::default(),
            principals: RwLock::default(),
            services: RwLock::default(),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(matches!(db, Db::Sqlite(_))),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
        });
        let mut nodes = NODES.lock().unwrap_or_else(PoisonError::into_inner);
        nodes.retain(|w| w.strong_count() > 0);
        nodes.push(Arc::downgrade(&c));
        c
    }

    /// A cache that this process's commits do not reach: only `NOTIFY` (through [`listen`]) evicts from it, as
    /// on another node. For tests of the cross-node path; a server uses [`NodeCache::new`].
    pub fn unshared(db: &Db) -> Arc<NodeCache> {
        let c = NodeCache::disabled();
        c.live.store(matches!(db, Db::Sqlite(_)), Ordering::Release);
        c
    }

    /// A cache that never stores anything (every read goes to the database).
    pub fn disabled() -> Arc<NodeCache> {
        Arc::new(NodeCache {
            sessions: RwLock::default(),
            principals: RwLock::default(),
            services: RwLock::default(),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
        })
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// How many times the PostgreSQL listener has subscribed (1 after start, more after reconnections).
    pub fn subscriptions(&self) -> u64 {
        self.subscribed.load(Ordering::Acquire)
    }

    /// (hits, misses) since start, for `/metrics`.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    fn evict(&self, t: Topic) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match t {
            Topic::Session(id) => self.sessions.write().unwrap_or_else(PoisonError::into_inner).retain(|_, e| e.value.id != id),
            Topic::Account(id) => {
                self.sessions.write().unwrap_or_else(PoisonError::into_inner).retain(|_, e| e.value.account_id != id);
                self.principals.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
            }
            Topic::Org(id) => {
                self.services.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
                self.principals.write().unwrap_or_else(PoisonError::into_inner).retain(|_, e| !e.value.joined.contains(&id));
            }
            Topic::All => self.clear(),
        }
        // Bumped again after the eviction: a load that read the database between the two bumps is refused too.
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn clear(&self) {
        self.sessions.write().unwrap_or_else(PoisonError::into_inner).clear();
        self.principals.write().unwrap_or_else(PoisonError::into_inner).clear();
        self.services.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.clear();
    }

    fn get<K: std::hash::Hash + Eq, T: Clone>(&self, map: &RwLock<HashMap<K, Entry<T>>>, k: &K) -> Option<T> {
        if !self.is_live() {
            return None;
        }
        let v = map.read().unwrap_or_else(PoisonError::into_inner).get(k).and_then(Entry::fresh);
        match v {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        v
    }

    fn put<K: std::hash::Hash + Eq, T>(&self, map: &RwLock<HashMap<K, Entry<T>>>, epoch: u64, k: K, value: T) {
        let mut m = map.write().unwrap_or_else(PoisonError::into_inner);
        // Checked under the write lock: an eviction takes the same lock, so it is either wholly before (epoch
        // moved: refuse) or wholly after (it will remove what is stored now).
        if self.is_live() && self.epoch.load(Ordering::Acquire) == epoch {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(k, Entry { value, at: Instant::now() });
        }
    }

    /// The live session for a browser's token, as [`session::lookup`] but served from the cache when it can be.
    /// A cached session past its expiry is not served; one last seen over a minute ago is extended in the database
    /// (as the uncached lookup does), so idle expiry works the same.
    pub async fn session(&self, db: &Db, token: &str) -> DbResult<Option<Session>> {
        let h = session::hash_secret(token);
        let now = crate::clock::now();
        if let Some(s) = self.get(&self.sessions, &h) {
            if s.expires_at > now && now - s.last_seen_at <= time::Duration::minutes(1) {
                return Ok(Some(s));
            }
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let s = session::lookup(db, token).await?;
        if let Some(s) = &s {
            let mut stored = s.clone();
            if now - s.last_seen_at > time::Duration::minutes(1) {
                stored.last_seen_at = now;
                stored.expires_at = now + session::IDLE;
            }
            self.put(&self.sessions, epoch, h, stored);
        }
        Ok(s)
    }

    pub async fn principal(&self, db: &Db, id: AccountId) -> DbResult<Principal> {
        if let Some(p) = self.get(&self.principals, &id) {
            return Ok(p);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let p = Principal::load(db, id).await?;
        self.put(&self.principals, epoch, id, p.clone());
        Ok(p)
    }

    /// The keys of the organisation's active services, in catalogue order.
    pub async fn active_services(&self, db: &Db, org: OrgId) -> DbResult<Vec<String>> {
        if let Some(v) = self.get(&self.services, &org) {
            return Ok(v);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let v = crate::catalogue::active_services(db, org).await?;
        self.put(&self.services, epoch, org, v.clone());
        Ok(v)
    }
}

/// Evicts `topics` from every cache of this process, now.
pub fn evict_local(topics: &[Topic]) {
    let nodes: Vec<Arc<NodeCache>> =
        NODES.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(Weak::upgrade).collect();
    for n in nodes {
        for t in topics {
            n.evict(*t);
        }
    }
}

/// After a change made outside a transaction (one statement on the pool): evicts here and tells the other nodes.
pub async fn changed(db: &Db, topics: &[Topic]) -> DbResult<()> {
    evict_local(topics);
    if let Db::Postgres(p) = db {
        for t in topics {
            sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(t.encode()).execute(p).await?;
        }
    }
    Ok(())
}

impl Tx {
    /// Records that this transaction changes what `topic` names: evicted here when it commits, and on PostgreSQL
    /// sent to the other nodes by `NOTIFY`, which the database delivers at the commit (and never on a rollback).
    pub async fn changed(&mut self, topic: Topic) -> DbResult<()> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(topic.encode()).execute(&mut **t).await?;
        }
        self.changed.push(topic);
        Ok(())
    }
}

/// On PostgreSQL, keeps `cache` in step with the other nodes until `stop`: listens on [`CHANNEL`], evicts what
/// arrives, and while the connection is down (or has just come back) serves nothing from the cache.
pub async fn listen(db: Db, cache: Arc<NodeCache>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Db::Postgres(pool) = db else { return };
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cache: cannot connect the listener; serving without cache");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cache: LISTEN failed; serving without cache");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        backoff = Duration::from_millis(200);
        // Subscribed: from now on nothing is missed, and the cache is empty.
        cache.set_live(true);
        cache.subscribed.fetch_add(1, Ordering::AcqRel);
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => cache.evict(Topic::decode(n.payload())),
                    // The connection was lost (notifications may have been missed): stop serving, reconnect.
                    Ok(None) | Err(_) => {
                        cache.set_live(false);
                        tracing::warn!("cache: listener connection lost; serving without cache until it is back");
                        break;
                    }
                },
                _ = stop.wait_for(|s| *s) => {
                    cache.set_live(false);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_garbage_means_everything() {
        let id = uuid::Uuid::now_v7();
        for t in [Topic::Session(SessionId(id)), Topic::Account(AccountId(id)), Topic::Org(OrgId(id)), Topic::All] {
            assert_eq!(Topic::decode(&t.encode()), t);
        }
        assert_eq!(Topic::decode("s:not-a-uuid"), Topic::All);
        assert_eq!(Topic::decode(""), Topic::All);
    }
}
