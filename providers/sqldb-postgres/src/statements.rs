//! Prepared-statement tokens. `prepare` hands a caller a token for its SQL on its
//! database; `exec` finds them again. A token belongs to the (app, component)
//! that prepared it: another component presenting it gets
//! `unknown-prepared-query`, as for a token that never existed. Preparing the same
//! SQL again gives the same token, and at most [`CAPACITY`] tokens are kept (the
//! oldest go first; their owners prepare again), so a component that prepares on
//! every request does not grow the provider.
//!
//! The statement itself is prepared on whichever pooled connection runs it
//! (connections cache their statements), so a token outlives connections but not
//! the provider process.

use crate::config::Settings;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Tokens kept at most.
pub const CAPACITY: usize = 10_000;

/// Who prepared a statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub app: String,
    pub component: String,
}

/// A prepared statement: its SQL and its database.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub settings: Settings,
}

type Key = (Owner, Settings, String);

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, (Key, Prepared)>,
    by_key: HashMap<Key, String>,
    /// Tokens, oldest first.
    order: VecDeque<String>,
}

pub struct Statements {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Statements {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// The token of `sql` on `settings` for `owner`: a new one, or the one it got
    /// before.
    pub fn insert(&self, owner: Owner, settings: Settings, sql: &str) -> String {
        let key = (owner, settings.clone(), sql.to_owned());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = inner.by_key.get(&key) {
            return token.clone();
        }
        while inner.order.len() >= self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((key, _)) = inner.by_token.remove(&oldest) {
                inner.by_key.remove(&key);
            }
        }
        let token = format!("ps-{:032x}", rand::random::<u128>());
        let prepared = Prepared {
            sql: sql.to_owned(),
            settings,
        };
        inner.by_key.insert(key.clone(), token.clone());
        inner.by_token.insert(token.clone(), (key, prepared));
        inner.order.push_back(token.clone());
        token
    }

    /// The statement of `token` if `owner` prepared it.
    pub fn get(&self, token: &str, owner: &Owner) -> Option<Prepared> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (key, prepared) = inner.by_token.get(token)?;
        (key.0 == *owner).then(|| prepared.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(component: &str) -> Owner {
        Owner {
            app: "app".into(),
            component: component.into(),
        }
    }

    #[test]
    fn tokens_belong_to_their_owner() {
        let s = Statements::new(10);
        let db = Settings::default();
        let t = s.insert(owner("a"), db.clone(), "SELECT 1");
        assert!(t.starts_with("ps-") && t.len() == 35, "{t}");
        assert_eq!(s.get(&t, &owner("a")).unwrap().sql, "SELECT 1");
        assert!(s.get(&t, &owner("b")).is_none());
        let other_app = Owner {
            app: "other".into(),
            component: "a".into(),
        };
        assert!(s.get(&t, &other_app).is_none());
        assert!(s.get("ps-nope", &owner("a")).is_none());
        // The same SQL again: the same token; another owner: another token.
        assert_eq!(s.insert(owner("a"), db.clone(), "SELECT 1"), t);
        assert_ne!(s.insert(owner("b"), db, "SELECT 1"), t);
    }

    #[test]
    fn the_oldest_go_first() {
        let s = Statements::new(2);
        let db = Settings::default();
        let first = s.insert(owner("a"), db.clone(), "1");
        let second = s.insert(owner("a"), db.clone(), "2");
        let third = s.insert(owner("a"), db.clone(), "3");
        assert!(s.get(&first, &owner("a")).is_none());
        assert!(s.get(&second, &owner("a")).is_some());
        assert!(s.get(&third, &owner("a")).is_some());
        assert_ne!(s.insert(owner("a"), db, "1"), first);
    }
}
