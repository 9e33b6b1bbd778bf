//! Duplicate customers: the stored candidate pairs (kept current by the application on
//! every customer write, read here as an index walk), merges that move a whole history
//! onto the survivor, and undoing them.
//!
//! Which customers pair up and how a pair scores are domain rules
//! (`tenure_domain::duplicates`); the store reads match keys and their groups, and writes
//! the pairs it is given.

use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::duplicates::{
    CandidatePosition, Profile, ScoredPair, key_range, merge_profiles, parse_reasons, reasons_text,
    unmerge_profile,
};
use tenure_domain::ids::{CustomerId, MergeId};
use tenure_domain::validation::Invalid;

use crate::customers::{delete_tx, fetch, reinsert, rewrite};
use crate::sql::{Bulk, Table};
use crate::time::{now_micros, opt_time, time};
use crate::{Page, Store, StoreError, StoreResult, WriteTx, stats};

/// One side of a candidate pair, enough to tell the two apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateSide {
    pub id: CustomerId,
    pub external_id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Two customers that look like one person.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The lower id first.
    pub a: CandidateSide,
    pub b: CandidateSide,
    pub pair: ScoredPair,
}

impl Candidate {
    pub fn position(&self) -> CandidatePosition {
        CandidatePosition {
            score_milli: self.pair.score_milli,
            a: self.pair.a,
            b: self.pair.b,
        }
    }
}

/// Which rows a merge moved onto the survivor, by table, to move back on undo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// Row ids per table of the registry whose rows the customer owns (`orders`,
    /// `interactions`, `consent_events`, ...).
    #[serde(flatten)]
    pub rows: BTreeMap<String, Vec<i64>>,
    /// External ids that pointed at the merged customer and now point at the survivor.
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl Moved {
    /// How many rows of `table` moved.
    pub fn count(&self, table: &str) -> usize {
        self.rows.get(table).map_or(0, Vec::len)
    }
}

/// A recorded merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub id: MergeId,
    pub survivor_id: CustomerId,
    pub merged_id: CustomerId,
    pub merged_external_id: Option<String>,
    /// The merged customer as it was.
    pub merged_profile: Profile,
    pub moved: Moved,
    pub merged_by: String,
    pub merged_at: chrono::DateTime<chrono::Utc>,
    pub undone_by: Option<String>,
    pub undone_at: Option<chrono::DateTime<chrono::Utc>>,
    survivor_before: Profile,
    survivor_after: Profile,
    merged_created_at: i64,
}

const MERGE_SELECT: &str = "SELECT id, survivor_id, merged_id, merged_external_id, survivor_before, survivor_after, \
     merged_profile, merged_created_at, moved, merged_by, merged_at, undone_by, undone_at FROM customer_merges";

fn merge_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Merge> {
    use crate::decode::json;
    Ok(Merge {
        id: MergeId(row.try_get("id")?),
        survivor_id: CustomerId(row.try_get("survivor_id")?),
        merged_id: CustomerId(row.try_get("merged_id")?),
        merged_external_id: row.try_get("merged_external_id")?,
        survivor_before: json(row, "survivor_before")?,
        survivor_after: json(row, "survivor_after")?,
        merged_profile: json(row, "merged_profile")?,
        merged_created_at: row.try_get("merged_created_at")?,
        moved: json(row, "moved")?,
        merged_by: row.try_get("merged_by")?,
        merged_at: time(row, "merged_at")?,
        undone_by: row.try_get("undone_by")?,
        undone_at: opt_time(row, "undone_at")?,
    })
}

fn to_json<T: Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::corrupt("customer_merges", e.to_string()))
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(Invalid::one(field, message))
}

/// Moves the given rows (and the rows of child tables that follow them) to `to`.
async fn move_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    moved: &Moved,
    to: CustomerId,
) -> StoreResult<()> {
    for table in crate::registry::owned_tables() {
        let Some(ids) = moved.rows.get(table.name) else {
            continue;
        };
        let children: Vec<_> = crate::registry::child_tables()
            .filter(|c| matches!(c.ownership, crate::registry::Ownership::Child { parent, .. } if parent == table.name))
            .collect();
        for chunk in ids.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 2)).collect();
            let list = list.join(",");
            let mut statements = vec![format!(
                "UPDATE {} SET customer_id = $1 WHERE id IN ({list})",
                table.name
            )];
            for child in &children {
                if let crate::registry::Ownership::Child { key, .. } = child.ownership {
                    statements.push(format!(
                        "UPDATE {} SET customer_id = $1 WHERE {key} IN ({list})",
                        child.name
                    ));
                }
            }
            for sql in statements {
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(to.0);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}

/// Locks two customers' rows on PostgreSQL, in id order so two merges cannot deadlock.
async fn lock_pair(w: &mut WriteTx<'_>, a: CustomerId, b: CustomerId) -> StoreResult<()> {
    w.lock(Table::Customers, a.0.min(b.0)).await?;
    w.lock(Table::Customers, a.0.max(b.0)).await?;
    Ok(())
}

const PAIR_SELECT: &str =
    "SELECT a_id, b_id, reasons, name_similarity, score_milli FROM duplicate_pairs";

fn pair_from_row(row: &sqlx::any::AnyRow) -> StoreResult<ScoredPair> {
    let reasons: String = row.try_get("reasons")?;
    Ok(ScoredPair {
        a: CustomerId(row.try_get("a_id")?),
        b: CustomerId(row.try_get("b_id")?),
        reasons: parse_reasons(&reasons).map_err(|e| StoreError::corrupt("reasons", e))?,
        name_similarity: row.try_get("name_similarity")?,
        score_milli: row.try_get("score_milli")?,
    })
}

/// Writes pairs with multi-row inserts.
async fn insert_pairs(w: &mut WriteTx<'_>, pairs: &[ScoredPair]) -> StoreResult<u64> {
    let mut rows = Bulk::new(
        w.backend(),
        "INSERT INTO duplicate_pairs (a_id, b_id, reasons, name_similarity, score_milli, rank)",
        6,
    );
    for p in pairs {
        rows.row(&mut w.tx, |r| {
            r.add(p.a.0)?;
            r.add(p.b.0)?;
            r.add(reasons_text(&p.reasons))?;
            r.add(p.name_similarity)?;
            r.add(p.score_milli)?;
            r.add(1000 - p.score_milli)
        })
        .await?;
    }
    rows.flush(&mut w.tx).await?;
    Ok(rows.rows_affected())
}

impl Store {
    /// Stored candidate pairs, best first, after `after`, scoring at least `min_score_milli`
    /// thousandths; with `of`, only the pairs that customer is part of.
    pub async fn duplicate_candidates(
        &self,
        of: Option<CustomerId>,
        min_score_milli: i64,
        after: Option<CandidatePosition>,
        limit: u32,
    ) -> StoreResult<Page<Candidate, CandidatePosition>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut s = crate::sql::Select::new(PAIR_SELECT);
        s.filter("rank <= {}", 1000 - min_score_milli)?;
        if let Some(c) = of {
            s.filter("(a_id = {} OR b_id = {})", c.0)?;
        }
        if let Some(p) = after {
            s.filter3(
                "(rank, a_id, b_id) > ({1}, {2}, {3})",
                1000 - p.score_milli,
                p.a.0,
                p.b.0,
            )?;
        }
        let (sql, args) = s.finish("ORDER BY rank, a_id, b_id", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let pairs = rows
            .iter()
            .map(pair_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut ids: Vec<i64> = pairs.iter().flat_map(|p| [p.a.0, p.b.0]).collect();
        ids.sort_unstable();
        ids.dedup();
        let sides = self.candidate_sides(&ids).await?;
        let items: Vec<Candidate> = pairs
            .into_iter()
            .filter_map(|pair| {
                Some(Candidate {
                    a: sides.get(&pair.a.0)?.clone(),
                    b: sides.get(&pair.b.0)?.clone(),
                    pair,
                })
            })
            .collect();
        Ok(Page::cut(items, limit, Candidate::position))
    }

    async fn candidate_sides(&self, ids: &[i64]) -> StoreResult<HashMap<i64, CandidateSide>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut s = crate::sql::Select::new(
                "SELECT id, external_id, name, email, phone FROM customers",
            );
            s.filter_in("id IN ({})", chunk)?;
            let (sql, args) = s.finish_unbounded("");
            for row in sqlx::query_with(AssertSqlSafe(sql), args)
                .fetch_all(self.pool())
                .await?
            {
                let id: i64 = row.try_get("id")?;
                out.insert(
                    id,
                    CandidateSide {
                        id: CustomerId(id),
                        external_id: row.try_get("external_id")?,
                        name: row.try_get("name")?,
                        email: row.try_get("email")?,
                        phone: row.try_get("phone")?,
                    },
                );
            }
        }
        Ok(out)
    }
}

impl WriteTx<'_> {
    /// Calls `group` with every match key held by two or more customers and its holders in
    /// id order, reading the key index once in key order, as this transaction sees it.
    pub async fn scan_key_groups(
        &mut self,
        mut group: impl FnMut(&str, &[i64]),
    ) -> StoreResult<()> {
        let (lo, hi) = key_range();
        let mut rows = sqlx::query(
            "SELECT term, customer_id FROM customer_search_terms \
             WHERE term >= $1 AND term < $2 ORDER BY term, customer_id",
        )
        .bind(lo)
        .bind(hi)
        .fetch(&mut *self.tx);
        let mut members: Vec<i64> = Vec::new();
        let mut current = String::new();
        while let Some(row) = rows.try_next().await? {
            let term: String = row.try_get("term")?;
            let id: i64 = row.try_get("customer_id")?;
            if term != current {
                if members.len() >= 2 {
                    group(&current, &members);
                }
                members.clear();
                current = term;
            }
            members.push(id);
        }
        if members.len() >= 2 {
            group(&current, &members);
        }
        Ok(())
    }

    /// A customer's match keys.
    pub async fn match_keys_of(&mut self, customer: CustomerId) -> StoreResult<Vec<String>> {
        crate::customers::stored_keys(&mut self.tx, customer).await
    }

    /// Up to `limit` holders of a match key, in id order.
    pub async fn key_members(&mut self, key: &str, limit: usize) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM customer_search_terms WHERE term = $1 ORDER BY customer_id LIMIT $2",
        )
        .bind(key.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// The names of these customers as this transaction sees them.
    pub async fn customer_names(&mut self, ids: &[i64]) -> StoreResult<HashMap<i64, String>> {
        names_of(&mut self.tx, ids).await
    }

    /// Replaces every stored pair that involves one of `customers` with `pairs` (which
    /// must be all the current pairs of those customers).
    pub async fn replace_pairs_of(
        &mut self,
        customers: &[CustomerId],
        pairs: &[ScoredPair],
    ) -> StoreResult<()> {
        for c in customers {
            sqlx::query("DELETE FROM duplicate_pairs WHERE a_id = $1 OR b_id = $1")
                .bind(c.0)
                .execute(&mut *self.tx)
                .await?;
        }
        insert_pairs(self, pairs).await?;
        Ok(())
    }

    /// Replaces every stored pair.
    pub async fn replace_all_pairs(&mut self, pairs: &[ScoredPair]) -> StoreResult<u64> {
        sqlx::query("DELETE FROM duplicate_pairs")
            .execute(&mut *self.tx)
            .await?;
        insert_pairs(self, pairs).await
    }

    /// Merges `merged` into `survivor`: its orders (with lines), interactions and consent
    /// history move over, empty profile fields are filled from it, its external id keeps
    /// pointing at the survivor, the aggregates are recomputed, and the merge is recorded so
    /// it can be undone.
    pub async fn merge_customers(
        &mut self,
        survivor: CustomerId,
        merged: CustomerId,
        by: &str,
    ) -> StoreResult<Merge> {
        if survivor == merged {
            return Err(invalid(
                "duplicate_id",
                "a customer cannot be merged into itself",
            ));
        }
        lock_pair(self, survivor, merged).await?;
        let s = fetch(&mut self.tx, survivor).await?;
        let m = match fetch(&mut self.tx, merged).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(StoreError::BadReference {
                    field: "duplicate_id",
                    message: format!("customer {merged} does not exist"),
                });
            }
            other => other?,
        };
        let before = Profile {
            data: s.data.clone(),
            consents: s.consents.clone(),
        };
        let duplicate = Profile {
            data: m.data.clone(),
            consents: m.consents.clone(),
        };
        let after = merge_profiles(&before, &duplicate);
        // The survivor may adopt the duplicate's external id only once the duplicate is gone.
        let adopt_external_id = s.data.external_id.is_none() && m.data.external_id.is_some();
        let aliases: Vec<String> =
            sqlx::query_scalar("SELECT external_id FROM customer_aliases WHERE customer_id = $1")
                .bind(merged.0)
                .fetch_all(&mut *self.tx)
                .await?;
        let mut moved = Moved {
            rows: BTreeMap::new(),
            aliases,
        };
        for table in crate::registry::owned_tables() {
            let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT id FROM {} WHERE customer_id = $1 ORDER BY id",
                table.name
            )))
            .bind(merged.0)
            .fetch_all(&mut *self.tx)
            .await?;
            moved.rows.insert(table.name.to_owned(), ids);
        }
        move_rows(&mut self.tx, &moved, survivor).await?;
        let lost = delete_tx(&mut self.tx, merged, true).await?;
        self.key_changes.extend(lost);
        let changed = rewrite(
            &mut self.tx,
            survivor,
            &after.data,
            &after.consents,
            &s.data,
        )
        .await?;
        self.key_changes.extend(changed);
        let currency = self.reporting_currency().to_owned();
        stats::rebuild(
            &mut self.tx,
            &currency,
            Some(&[survivor.0.min(merged.0), survivor.0.max(merged.0)]),
        )
        .await?;
        let now = now_micros();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO customer_merges (survivor_id, merged_id, merged_external_id, survivor_before, \
             survivor_after, merged_profile, merged_created_at, moved, merged_by, merged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(survivor.0)
        .bind(merged.0)
        .bind(m.data.external_id.clone())
        .bind(to_json(&before)?)
        .bind(to_json(&after)?)
        .bind(to_json(&duplicate)?)
        .bind(m.created_at.timestamp_micros())
        .bind(to_json(&moved)?)
        .bind(by.to_owned())
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE customer_aliases SET customer_id = $1 WHERE customer_id = $2")
            .bind(survivor.0)
            .bind(merged.0)
            .execute(&mut *self.tx)
            .await?;
        if let Some(x) = m.data.external_id.as_ref().filter(|_| !adopt_external_id) {
            sqlx::query(
                "INSERT INTO customer_aliases (external_id, customer_id, merge_id) VALUES ($1, $2, $3)",
            )
            .bind(x.clone())
            .bind(survivor.0)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        }
        merge_in(&mut self.tx, MergeId(id)).await
    }

    /// Undoes a merge: the merged customer comes back (same id when it is free) with its
    /// profile, and the rows that moved go back to it; the survivor's profile returns to
    /// what it was, keeping edits made since. A merge can be undone while no later merge
    /// involves its survivor (undo that one first).
    ///
    /// The merge record is locked before it is checked, so of two concurrent undos (a
    /// client's retry) the second waits and then finds the merge undone.
    pub async fn undo_merge(&mut self, merge_id: MergeId, by: &str) -> StoreResult<Merge> {
        if !self.lock(Table::Merges, merge_id.0).await? {
            return Err(StoreError::NotFound { what: "merge" });
        }
        let merge = merge_in(&mut self.tx, merge_id).await?;
        if merge.undone_at.is_some() {
            return Err(StoreError::Refused(format!(
                "merge {merge_id} was undone already"
            )));
        }
        let later: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(id) FROM customer_merges WHERE id > $1 AND undone_at IS NULL \
             AND (survivor_id = $2 OR merged_id = $2)",
        )
        .bind(merge_id.0)
        .bind(merge.survivor_id.0)
        .fetch_one(&mut *self.tx)
        .await?;
        if let Some(later) = later {
            return Err(StoreError::Refused(format!(
                "customer {} was in a later merge ({later}); undo that one first",
                merge.survivor_id
            )));
        }
        let survivor = merge.survivor_id;
        lock_pair(self, survivor, merge.merged_id).await?;
        let s = fetch(&mut self.tx, survivor).await?;
        let current = Profile {
            data: s.data.clone(),
            consents: s.consents.clone(),
        };
        let restored = unmerge_profile(&merge.survivor_before, &merge.survivor_after, &current);
        let changed = rewrite(
            &mut self.tx,
            survivor,
            &restored.data,
            &restored.consents,
            &s.data,
        )
        .await?;
        self.key_changes.extend(changed);
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
            .bind(merge.merged_id.0)
            .fetch_optional(&mut *self.tx)
            .await?;
        let back = match taken {
            None => merge.merged_id,
            Some(_) => {
                let backend = self.backend();
                CustomerId(backend.reserve_id(&mut self.tx, "customers").await?)
            }
        };
        sqlx::query("DELETE FROM customer_aliases WHERE merge_id = $1")
            .bind(merge_id.0)
            .execute(&mut *self.tx)
            .await?;
        let gained = reinsert(
            &mut self.tx,
            back,
            &merge.merged_profile.data,
            &merge.merged_profile.consents,
            merge.merged_created_at,
        )
        .await?;
        self.key_changes.extend(gained);
        move_rows(&mut self.tx, &merge.moved, back).await?;
        for alias in &merge.moved.aliases {
            sqlx::query("UPDATE customer_aliases SET customer_id = $1 WHERE external_id = $2")
                .bind(back.0)
                .bind(alias.clone())
                .execute(&mut *self.tx)
                .await?;
        }
        let currency = self.reporting_currency().to_owned();
        stats::rebuild(
            &mut self.tx,
            &currency,
            Some(&[survivor.0.min(back.0), survivor.0.max(back.0)]),
        )
        .await?;
        sqlx::query(
            "UPDATE customer_merges SET undone_by = $1, undone_at = $2, merged_id = $3 WHERE id = $4",
        )
        .bind(by.to_owned())
        .bind(now_micros())
        .bind(back.0)
        .bind(merge_id.0)
        .execute(&mut *self.tx)
        .await?;
        merge_in(&mut self.tx, merge_id).await
    }
}

async fn merge_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: MergeId,
) -> StoreResult<Merge> {
    let row = sqlx::query(AssertSqlSafe(format!("{MERGE_SELECT} WHERE id = $1")))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound { what: "merge" })?;
    merge_from_row(&row)
}

impl Store {
    pub async fn get_merge(&self, id: MergeId) -> StoreResult<Merge> {
        let row = sqlx::query(AssertSqlSafe(format!("{MERGE_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "merge" })?;
        merge_from_row(&row)
    }

    /// Merges, newest first, optionally only those involving one customer.
    pub async fn list_merges(
        &self,
        customer: Option<CustomerId>,
        before: Option<MergeId>,
        limit: u32,
    ) -> StoreResult<Page<Merge, MergeId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut s = crate::sql::Select::new(MERGE_SELECT);
        if let Some(c) = customer {
            s.filter("(survivor_id = {} OR merged_id = {})", c.0)?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b.0)?;
        }
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(merge_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |m| m.id))
    }
}

/// The names of these customers (ids not found are left out).
pub(crate) async fn names_of(
    conn: &mut sqlx::AnyConnection,
    ids: &[i64],
) -> StoreResult<HashMap<i64, String>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut s = crate::sql::Select::new("SELECT id, name FROM customers");
        s.filter_in("id IN ({})", chunk)?;
        let (sql, args) = s.finish_unbounded("");
        for row in sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(&mut *conn)
            .await?
        {
            out.insert(row.try_get("id")?, row.try_get("name")?);
        }
    }
    Ok(out)
}
