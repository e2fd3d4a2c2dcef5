//! Matching the event loop's notifications to the publishes and subscribes waiting for them.
//!
//! rumqttc assigns packet ids inside its event loop and reports them only as events
//! (`Outgoing::Publish(pkid)`, then `Incoming::PubAck(pkid)`). Requests reach the event loop in
//! the order they were queued, and each connection gets a fresh event loop (so nothing is ever
//! retransmitted with an old id), so a FIFO of waiters lines up with the `Outgoing` events: the
//! first unassigned waiter gets the next packet id. A publish whose id was still in use waits
//! (`Outgoing::AwaitAck`) and is sent, with that id, once the old one is acknowledged.

use rumqttc::{Event, Outgoing, Packet, SubscribeReasonCode};
use std::collections::{HashMap, VecDeque};
use tokio::sync::oneshot;

/// Told `Ok` once the broker holds the message (or granted the subscription), `Err` otherwise.
pub type Waiter = oneshot::Sender<Result<(), String>>;

/// The waiters of one connection.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Why the connection ended; no new waiter is accepted then.
    closed: Option<String>,
    /// Publishes queued to the event loop and not yet given a packet id, oldest first.
    publishes: VecDeque<Waiter>,
    /// Publishes held back because their packet id was still in use.
    collided: HashMap<u16, VecDeque<Waiter>>,
    /// Sent publishes by packet id, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    unacked: HashMap<u16, VecDeque<Waiter>>,
    /// Subscribes queued and not yet sent; `None` when nobody waits for the SUBACK.
    subscribes: VecDeque<Option<Waiter>>,
    /// Sent subscribes by packet id.
    unsubacked: HashMap<u16, Option<Waiter>>,
}

impl Tracker {
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Records a publish just queued to the event loop.
    pub fn queued_publish(&mut self, waiter: Waiter) {
        self.publishes.push_back(waiter);
    }

    /// Records a subscribe just queued to the event loop.
    pub fn queued_subscribe(&mut self, waiter: Option<Waiter>) {
        self.subscribes.push_back(waiter);
    }

    /// Updates the waiters for one event of the event loop.
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(0)) => {
                // QoS 0: written to the connection, and that is all there is.
                if let Some(w) = self.publishes.pop_front() {
                    let _ = w.send(Ok(()));
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let held = self.collided.get_mut(pkid).and_then(VecDeque::pop_front);
                if let Some(w) = held.or_else(|| self.publishes.pop_front()) {
                    self.unacked.entry(*pkid).or_default().push_back(w);
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                if let Some(w) = self.publishes.pop_front() {
                    self.collided.entry(*pkid).or_default().push_back(w);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => self.acked(ack.pkid),
            Event::Incoming(Packet::PubRec(rec)) => self.acked(rec.pkid),
            Event::Outgoing(Outgoing::Subscribe(pkid)) => {
                if let Some(w) = self.subscribes.pop_front() {
                    self.unsubacked.insert(*pkid, w);
                }
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                if let Some(Some(w)) = self.unsubacked.remove(&ack.pkid) {
                    let refused = ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure));
                    let _ = w.send(if refused {
                        Err("the broker refused the subscription".into())
                    } else {
                        Ok(())
                    });
                }
            }
            _ => {}
        }
    }

    fn acked(&mut self, pkid: u16) {
        if let Some(queue) = self.unacked.get_mut(&pkid) {
            if let Some(w) = queue.pop_front() {
                let _ = w.send(Ok(()));
            }
            if queue.is_empty() {
                self.unacked.remove(&pkid);
            }
        }
    }

    /// The connection ended: every waiter fails with `why`, and no new one is accepted.
    pub fn close(&mut self, why: &str) {
        self.closed = Some(why.to_owned());
        let publishes = self
            .publishes
            .drain(..)
            .chain(self.collided.drain().flat_map(|(_, q)| q))
            .chain(self.unacked.drain().flat_map(|(_, q)| q));
        for w in publishes {
            let _ = w.send(Err(why.to_owned()));
        }
        let subscribes = self
            .subscribes
            .drain(..)
            .chain(self.unsubacked.drain().map(|(_, w)| w));
        for w in subscribes.flatten() {
            let _ = w.send(Err(why.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{PubAck, SubAck};

    fn waiter() -> (Waiter, oneshot::Receiver<Result<(), String>>) {
        oneshot::channel()
    }

    fn puback(pkid: u16) -> Event {
        Event::Incoming(Packet::PubAck(PubAck::new(pkid)))
    }

    fn out(o: Outgoing) -> Event {
        Event::Outgoing(o)
    }

    #[test]
    fn publishes_resolve_on_their_own_puback() {
        let mut t = Tracker::default();
        let (a, mut ra) = waiter();
        let (b, mut rb) = waiter();
        t.queued_publish(a);
        t.queued_publish(b);
        t.on_event(&out(Outgoing::Publish(1)));
        t.on_event(&out(Outgoing::Publish(2)));
        t.on_event(&puback(2));
        assert_eq!(rb.try_recv(), Ok(Ok(())));
        assert!(ra.try_recv().is_err(), "1 is not acked yet");
        t.on_event(&puback(1));
        assert_eq!(ra.try_recv(), Ok(Ok(())));
    }

    #[test]
    fn a_collided_publish_waits_for_the_old_ack() {
        let mut t = Tracker::default();
        let (a, mut ra) = waiter();
        let (b, mut rb) = waiter();
        t.queued_publish(a);
        t.on_event(&out(Outgoing::Publish(1)));
        t.queued_publish(b);
        t.on_event(&out(Outgoing::AwaitAck(1)));
        // The old ack comes in; the held publish goes out with the same id.
        t.on_event(&puback(1));
        t.on_event(&out(Outgoing::Publish(1)));
        assert_eq!(ra.try_recv(), Ok(Ok(())));
        assert!(rb.try_recv().is_err());
        t.on_event(&puback(1));
        assert_eq!(rb.try_recv(), Ok(Ok(())));
    }

    #[test]
    fn qos0_resolves_when_written_and_close_fails_the_rest() {
        let mut t = Tracker::default();
        let (a, mut ra) = waiter();
        let (b, mut rb) = waiter();
        let (s, mut rs) = waiter();
        t.queued_publish(a);
        t.on_event(&out(Outgoing::Publish(0)));
        assert_eq!(ra.try_recv(), Ok(Ok(())));
        t.queued_publish(b);
        t.on_event(&out(Outgoing::Publish(7)));
        t.queued_subscribe(Some(s));
        t.close("gone");
        assert_eq!(rb.try_recv(), Ok(Err("gone".into())));
        assert_eq!(rs.try_recv(), Ok(Err("gone".into())));
        assert_eq!(t.closed(), Some("gone"));
    }

    #[test]
    fn subscribes_resolve_on_suback_and_refusals_fail() {
        let mut t = Tracker::default();
        let (a, mut ra) = waiter();
        let (b, mut rb) = waiter();
        t.queued_subscribe(None);
        t.queued_subscribe(Some(a));
        t.queued_subscribe(Some(b));
        for pkid in [3, 4, 5] {
            t.on_event(&out(Outgoing::Subscribe(pkid)));
        }
        let granted = SubAck::new(
            4,
            vec![SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)],
        );
        t.on_event(&Event::Incoming(Packet::SubAck(granted)));
        let refused = SubAck::new(5, vec![SubscribeReasonCode::Failure]);
        t.on_event(&Event::Incoming(Packet::SubAck(refused)));
        assert_eq!(ra.try_recv(), Ok(Ok(())));
        assert!(matches!(rb.try_recv(), Ok(Err(_))));
    }
}
