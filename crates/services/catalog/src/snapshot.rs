//! The product pages, in memory: every visible product's answer (its JSON
//! body and ETag) ready to send, so that a product read costs no database
//! round trip.
//!
//! The table stays the source of truth. The snapshot is loaded from it at
//! start, and the consumer that writes the table refreshes the products an
//! event touched right after its transaction commits
//! ([`Handler::committed`]), reading them back from the table. Changes made
//! by another process (an operator's `events replay`) show after the next
//! full reload, every [`RELOAD_EVERY`]. Each replica keeps its own.
//!
//! Writers (the consumer's refreshes and the full reloads) take one mutex
//! across their read of the table and their update of the map: the last
//! writer read the latest committed state, so an older read never replaces
//! a newer one. Readers only take the map's read lock, for a clone of an
//! `Arc`.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use postgres::GenericClient;
use teipsum_kit::{
    db::{Db, DbError},
    events::{Envelope, HandleError, Handler},
};
use uuid::Uuid;

use crate::routes::{COLUMNS, Row, VISIBLE};

/// How often the whole snapshot is read again from the table.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// A product's answer: the body and ETag of `GET /api/products/{id}`.
#[derive(Debug)]
pub struct Page {
    /// The JSON body.
    pub body: Vec<u8>,
    /// Its ETag, `"<version>-<stock status>"`.
    pub etag: String,
}

impl Page {
    fn of(row: &Row) -> Page {
        Page {
            body: serde_json::to_vec(&row.product).expect("a product serializes"),
            etag: format!("\"{}-{}\"", row.version, row.product.stock.status.as_str()),
        }
    }
}

/// The visible products' pages, shared by the routes and the consumer.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pages: Arc<RwLock<HashMap<Uuid, Arc<Page>>>>,
    writer: Arc<Mutex<()>>,
}

impl Snapshot {
    /// The page of product `id`, if it is visible.
    pub fn get(&self, id: Uuid) -> Option<Arc<Page>> {
        self.pages
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
    }

    /// Read every visible product from the table and replace the map.
    pub fn reload(&self, conn: &mut impl GenericClient) -> Result<usize, postgres::Error> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let rows = conn.query(
            &format!(
                "SELECT {COLUMNS} FROM products p LEFT JOIN stock s ON s.product_id = p.id WHERE {VISIBLE}"
            ),
            &[],
        )?;
        let pages: HashMap<Uuid, Arc<Page>> = rows
            .iter()
            .map(|r| {
                let row = Row::from_row(r);
                (row.product.id, Arc::new(Page::of(&row)))
            })
            .collect();
        let n = pages.len();
        *self.pages.write().unwrap_or_else(|p| p.into_inner()) = pages;
        Ok(n)
    }

    /// Read `ids` again from the table: a product no longer visible leaves.
    pub fn refresh(
        &self,
        conn: &mut impl GenericClient,
        ids: &[Uuid],
    ) -> Result<(), postgres::Error> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let rows = conn.query(
            &format!(
                "SELECT {COLUMNS} FROM products p LEFT JOIN stock s ON s.product_id = p.id \
                 WHERE p.id = ANY($1) AND {VISIBLE}"
            ),
            &[&ids],
        )?;
        let fresh: Vec<Row> = rows.iter().map(Row::from_row).collect();
        let mut pages = self.pages.write().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            pages.remove(id);
        }
        for row in &fresh {
            pages.insert(row.product.id, Arc::new(Page::of(row)));
        }
        Ok(())
    }

    /// Load the snapshot now, then reload it every [`RELOAD_EVERY`] (a
    /// failed reload keeps what it had, and the next one tries again).
    pub fn keep_loaded(&self, db: &Db) -> anyhow::Result<()> {
        // The blocking client may not run on a runtime thread, and the
        // service is built on one: load from a thread of its own.
        let loaded = std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<usize, DbError> { Ok(self.reload(&mut *db.get()?)?) })
                .join()
                .unwrap_or(Err(DbError::Join))
        })?;
        tracing::info!(products = loaded, "catalog snapshot loaded");
        // A thread, not a task: the pool's connections must never be
        // dropped on a runtime thread, and this one lives as long as the
        // process.
        let (snapshot, db) = (self.clone(), db.clone());
        std::thread::Builder::new()
            .name("catalog-snapshot".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(RELOAD_EVERY);
                    let result = db
                        .get()
                        .and_then(|mut conn| Ok(snapshot.reload(&mut *conn)?));
                    if let Err(e) = result {
                        tracing::warn!(error = %teipsum_kit::db::describe(&e), "could not reload the catalog snapshot");
                    }
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot start the snapshot thread: {e}"))?;
        Ok(())
    }
}

/// The catalog's consumer, refreshing `snapshot` after each commit with
/// the products its events touched.
pub struct Refreshing {
    inner: Box<dyn Handler>,
    snapshot: Snapshot,
    db: Db,
    touched: BTreeSet<Uuid>,
}

impl Refreshing {
    /// `inner` (the catalog's handler), keeping `snapshot` current.
    pub fn new(inner: Box<dyn Handler>, snapshot: Snapshot, db: Db) -> Self {
        Refreshing {
            inner,
            snapshot,
            db,
            touched: BTreeSet::new(),
        }
    }
}

impl Handler for Refreshing {
    fn handle(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        topic: &str,
        event: &Envelope,
    ) -> Result<(), HandleError> {
        self.inner.handle(tx, topic, event)?;
        // Product and stock events are about the product they name.
        if let Ok(id) = event.subject.parse::<Uuid>() {
            self.touched.insert(id);
        }
        Ok(())
    }

    fn wants(&self, topic: &str, kind: &str) -> bool {
        self.inner.wants(topic, kind)
    }

    fn understands(&self, topic: &str, kind: &str, version: u32) -> bool {
        self.inner.understands(topic, kind, version)
    }

    fn begin_batch(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        events: &[(&str, &Envelope)],
    ) -> Result<(), HandleError> {
        self.inner.begin_batch(tx, events)
    }

    fn end_batch(&mut self, tx: &mut postgres::Transaction<'_>) -> Result<(), HandleError> {
        self.inner.end_batch(tx)
    }

    fn rolled_back(&mut self) {
        // Nothing of it reached the table.
        self.touched.clear();
        self.inner.rolled_back();
    }

    fn committed(&mut self) {
        self.inner.committed();
        if self.touched.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = std::mem::take(&mut self.touched).into_iter().collect();
        let result = self
            .db
            .get()
            .and_then(|mut conn| Ok(self.snapshot.refresh(&mut *conn, &ids)?));
        if let Err(e) = result {
            // The next full reload repairs it.
            tracing::warn!(error = %teipsum_kit::db::describe(&e), products = ids.len(), "could not refresh the catalog snapshot");
        }
    }
}
