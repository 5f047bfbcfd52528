//! What the order service adds to `/metrics`: its orders by state, counted
//! at each scrape, and how long the saga takes an order from `PLACED` to
//! the state it leaves `PLACED` for (`teipsum_order_completion_seconds`,
//! `outcome` = that state): `confirmed` or `rejected` when inventory
//! answers, `cancelled` when the customer cancels first, `expired` when
//! nobody answered in time. A confirmed order cancelled later has already
//! completed; it is not observed a second time.

use std::time::Duration;

use postgres::Transaction;
use prometheus_client::{
    metrics::{family::Family, gauge::Gauge, histogram::Histogram},
    registry::Unit,
};
use teipsum_events::{Envelope, Event};
use teipsum_kit::{
    Context,
    db::Conn,
    events::{HandleError, Handler},
};

/// An order's states, as stored (the `status` column and the API), each
/// with its label value.
const STATES: [(&str, &str); 5] = [
    ("PLACED", "placed"),
    ("CONFIRMED", "confirmed"),
    ("REJECTED", "rejected"),
    ("CANCELLED", "cancelled"),
    ("EXPIRED", "expired"),
];

/// `state="confirmed"`, `outcome="expired"` ...
type Label = [(&'static str, &'static str); 1];

/// Seconds from placed to completed: most orders are confirmed within a
/// second, and an unanswered one expires after the spec's `confirm_within`
/// (minutes), so the buckets reach an hour.
const COMPLETION_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

fn completion_histogram() -> Histogram {
    Histogram::new(COMPLETION_BUCKETS)
}

/// The label value of a stored state.
fn label(status: &str) -> Option<&'static str> {
    STATES
        .iter()
        .find(|(stored, _)| *stored == status)
        .map(|(_, label)| *label)
}

/// Where the saga's completions are observed.
#[derive(Debug, Clone)]
pub struct Saga {
    completion: Family<Label, Histogram, fn() -> Histogram>,
}

impl Saga {
    /// Register the order service's families with the context's metrics.
    pub fn register(ctx: &Context) -> Saga {
        let orders = Family::<Label, Gauge>::default();
        ctx.metrics
            .register("teipsum_orders", "Orders by state", orders.clone());
        ctx.metrics
            .from_database(&ctx.db, count_by_state, move |counts| {
                orders.clear();
                for (state, n) in counts.into_iter().flatten() {
                    orders.get_or_create(&[("state", state)]).set(n);
                }
            });
        let completion: Family<Label, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(completion_histogram);
        ctx.metrics.register_with_unit(
            "teipsum_order_completion",
            "Time from placing an order to the state it left PLACED for (outcome)",
            Unit::Seconds,
            completion.clone(),
        );
        Saga { completion }
    }

    /// An order left `PLACED` for `status`, `after` it was placed.
    pub fn completed(&self, status: &str, after: Duration) {
        if let Some(outcome) = label(status) {
            self.completion
                .get_or_create(&[("outcome", outcome)])
                .observe(after.as_secs_f64());
        }
    }
}

/// Orders per state, every state present (0 when it has none).
fn count_by_state(conn: &mut Conn) -> Result<Vec<(&'static str, i64)>, postgres::Error> {
    let rows = conn.query("SELECT status, count(*) FROM orders GROUP BY status", &[])?;
    Ok(STATES
        .iter()
        .map(|(stored, label)| {
            let n = rows
                .iter()
                .find(|r| r.get::<_, &str>(0) == *stored)
                .map_or(0, |r| r.get(1));
            (*label, n)
        })
        .collect())
}

/// The order service's consumer handler, observing the orders that
/// inventory's answers complete; each observation counts once the
/// consumer's transaction commits.
pub struct Observed {
    inner: Box<dyn Handler>,
    saga: Saga,
    /// Completions handled in the open transaction.
    pending: Vec<(&'static str, Duration)>,
}

impl Observed {
    /// `inner` (the service's consumer handler), observed in `saga`.
    pub fn new(inner: Box<dyn Handler>, saga: Saga) -> Self {
        Observed {
            inner,
            saga,
            pending: Vec::new(),
        }
    }
}

impl Handler for Observed {
    fn handle(
        &mut self,
        tx: &mut Transaction<'_>,
        topic: &str,
        envelope: &Envelope,
    ) -> Result<(), HandleError> {
        let answer = match self
            .inner
            .wants(topic, &envelope.kind)
            .then(|| Event::decode(envelope).ok())
            .flatten()
        {
            Some(Event::StockReserved(r)) => Some((r.order_id, "CONFIRMED")),
            Some(Event::ReservationRejected(r)) => Some((r.order_id, "REJECTED")),
            _ => None,
        };
        if let Some((order_id, status)) = answer {
            // Locked: the handler's `... WHERE status = 'PLACED'` that
            // follows changes exactly the order found here.
            let placed = tx.query_opt(
                "SELECT greatest(extract(epoch FROM now() - created_at), 0)::float8 FROM orders \
                 WHERE id = $1 AND status = 'PLACED' FOR UPDATE",
                &[&order_id],
            )?;
            if let Some(row) = placed {
                self.pending
                    .push((status, Duration::from_secs_f64(row.get(0))));
            }
        }
        self.inner.handle(tx, topic, envelope)
    }

    fn wants(&self, topic: &str, kind: &str) -> bool {
        self.inner.wants(topic, kind)
    }

    fn understands(&self, topic: &str, kind: &str, version: u32) -> bool {
        self.inner.understands(topic, kind, version)
    }

    fn begin_batch(
        &mut self,
        tx: &mut Transaction<'_>,
        events: &[(&str, &Envelope)],
    ) -> Result<(), HandleError> {
        self.inner.begin_batch(tx, events)
    }

    fn end_batch(&mut self, tx: &mut Transaction<'_>) -> Result<(), HandleError> {
        self.inner.end_batch(tx)
    }

    fn committed(&mut self) {
        for (status, after) in self.pending.drain(..) {
            self.saga.completed(status, after);
        }
        self.inner.committed();
    }

    fn rolled_back(&mut self) {
        self.pending.clear();
        self.inner.rolled_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_state_has_a_label_and_others_none() {
        for (stored, label_value) in STATES {
            assert_eq!(label(stored), Some(label_value));
        }
        assert_eq!(label("SHIPPED"), None);
    }
}
