//! [`FakeBus`]: core NATS in memory.

use super::subject::matches;
use crate::{Bus, BusError, HeaderMap, Message, RequestError, Subscription};
use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Core NATS in memory. See the [module docs](super).
#[derive(Debug, Clone, Default)]
pub struct FakeBus {
    server: Arc<Mutex<Server>>,
}

#[derive(Debug, Default)]
struct Server {
    subs: Vec<Sub>,
    /// Names inboxes; also rotates queue groups.
    counter: u64,
}

#[derive(Debug)]
struct Sub {
    pattern: String,
    queue: Option<String>,
    tx: mpsc::UnboundedSender<Message>,
}

impl FakeBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn server(&self) -> MutexGuard<'_, Server> {
        // A panic in another test thread must not hide this test's result.
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, pattern: String, queue: Option<String>) -> Subscription {
        let (tx, rx) = mpsc::unbounded();
        self.server().subs.push(Sub { pattern, queue, tx });
        rx.boxed()
    }

    /// Deliver `msg` to every plain subscriber and one member of each queue group;
    /// returns how many subscriptions got it.
    fn deliver(&self, msg: Message) -> usize {
        let mut server = self.server();
        server.subs.retain(|s| !s.tx.is_closed());
        server.counter += 1;
        let turn = server.counter as usize;
        let mut groups: BTreeMap<&str, Vec<&Sub>> = BTreeMap::new();
        let mut delivered = 0;
        for sub in server
            .subs
            .iter()
            .filter(|s| matches(&s.pattern, &msg.subject))
        {
            match &sub.queue {
                Some(q) => groups.entry(q).or_default().push(sub),
                None => {
                    delivered += usize::from(sub.tx.unbounded_send(msg.clone()).is_ok());
                }
            }
        }
        for members in groups.values() {
            let member = members[turn % members.len()];
            delivered += usize::from(member.tx.unbounded_send(msg.clone()).is_ok());
        }
        delivered
    }

    /// How many live subscriptions match `subject` (queue members counted each).
    pub fn listeners(&self, subject: &str) -> usize {
        let mut server = self.server();
        server.subs.retain(|s| !s.tx.is_closed());
        server
            .subs
            .iter()
            .filter(|s| matches(&s.pattern, subject))
            .count()
    }
}

impl Bus for FakeBus {
    fn publish(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            self.deliver(Message {
                subject,
                reply: None,
                headers,
                payload,
            });
            Ok(())
        })
    }

    fn request(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, RequestError>> {
        Box::pin(async move {
            let inbox = {
                let mut server = self.server();
                server.counter += 1;
                format!("_INBOX.fake.{}", server.counter)
            };
            let mut answers = self.add(inbox.clone(), None);
            let asked = Message {
                subject: subject.clone(),
                reply: Some(inbox),
                headers,
                payload,
            };
            if self.deliver(asked) == 0 {
                return Err(RequestError::NoResponders { subject });
            }
            match tokio::time::timeout(timeout, answers.next()).await {
                Ok(Some(answer)) => Ok(answer),
                Ok(None) | Err(_) => Err(RequestError::TimedOut { subject, timeout }),
            }
        })
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(async move { Ok(self.add(subject, None)) })
    }

    fn queue_subscribe(
        &self,
        subject: String,
        queue: String,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(async move { Ok(self.add(subject, Some(queue))) })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn drain(sub: &mut Subscription) -> Vec<String> {
        let mut got = Vec::new();
        while let Some(Some(m)) = sub.next().now_or_never() {
            got.push(m.subject);
        }
        got
    }

    #[tokio::test]
    async fn wildcard_subscribers_get_matching_subjects_only() {
        let bus = FakeBus::new();
        let mut all = bus.subscribe("l.evt.>".into()).await.unwrap();
        let mut one = bus.subscribe("l.evt.*".into()).await.unwrap();
        let mut exact = bus.subscribe("l.evt.a".into()).await.unwrap();
        for s in ["l.evt.a", "l.evt.b.c", "l.api.x"] {
            bus.publish(s.into(), None, Bytes::new()).await.unwrap();
        }
        assert_eq!(drain(&mut all), ["l.evt.a", "l.evt.b.c"]);
        assert_eq!(drain(&mut one), ["l.evt.a"]);
        assert_eq!(drain(&mut exact), ["l.evt.a"]);
    }

    #[tokio::test]
    async fn each_message_goes_to_one_member_of_a_queue_group() {
        let bus = FakeBus::new();
        let mut a = bus.queue_subscribe("q.>".into(), "g".into()).await.unwrap();
        let mut b = bus.queue_subscribe("q.>".into(), "g".into()).await.unwrap();
        let mut other = bus.queue_subscribe("q.>".into(), "h".into()).await.unwrap();
        for _ in 0..10 {
            bus.publish("q.x".into(), None, Bytes::new()).await.unwrap();
        }
        let (a, b) = (drain(&mut a).len(), drain(&mut b).len());
        assert_eq!(a + b, 10);
        assert!(a > 0 && b > 0, "both members get work: {a} and {b}");
        assert_eq!(
            drain(&mut other).len(),
            10,
            "another group gets every message"
        );
    }

    #[tokio::test]
    async fn a_dropped_member_gets_nothing_and_the_others_get_all() {
        let bus = FakeBus::new();
        let mut a = bus.queue_subscribe("q".into(), "g".into()).await.unwrap();
        drop(bus.queue_subscribe("q".into(), "g".into()).await.unwrap());
        for _ in 0..4 {
            bus.publish("q".into(), None, Bytes::new()).await.unwrap();
        }
        assert_eq!(drain(&mut a).len(), 4);
        assert_eq!(bus.listeners("q"), 1);
    }

    #[tokio::test]
    async fn request_reply_with_headers() {
        let bus = FakeBus::new();
        let mut service = bus.subscribe("svc.echo".into()).await.unwrap();
        let server = bus.clone();
        tokio::spawn(async move {
            while let Some(m) = service.next().await {
                let reply = m.reply.unwrap();
                server.publish(reply, m.headers, m.payload).await.unwrap();
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-abc-def-01");
        let answer = bus
            .request(
                "svc.echo".into(),
                Some(headers),
                "hi".into(),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(answer.payload, "hi");
        let headers = answer.headers.unwrap();
        assert_eq!(
            headers.get("traceparent").unwrap().as_str(),
            "00-abc-def-01"
        );
    }

    #[tokio::test]
    async fn a_request_nobody_listens_to_fails_with_no_responders() {
        let bus = FakeBus::new();
        drop(bus.subscribe("svc.gone".into()).await.unwrap());
        let err = bus
            .request(
                "svc.gone".into(),
                None,
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_nobody_answers_times_out() {
        let bus = FakeBus::new();
        let _silent = bus.subscribe("svc.slow".into()).await.unwrap();
        let err = bus
            .request(
                "svc.slow".into(),
                None,
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::TimedOut { .. }), "{err}");
    }
}
