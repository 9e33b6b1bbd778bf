//! Duplicate customers: candidates from shared match keys, merges that move a whole
//! history onto the survivor, and undoing them.

use std::collections::{BTreeSet, HashMap};

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::duplicates::{
    MatchReason, Profile, key_range, merge_profiles, name_similarity, score, unmerge_profile,
};
use tenure_domain::ids::CustomerId;
use tenure_domain::validation::Invalid;

use crate::customers::{delete_tx, fetch, reinsert, rewrite};
use crate::time::{from_micros, now_micros};
use crate::{Backend, Store, StoreError, StoreResult, stats};

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
    pub reasons: BTreeSet<MatchReason>,
    pub name_similarity: f64,
    /// 0–1; pairs are listed best first.
    pub score: f64,
}

/// Where a page of candidates ends: best first, then by ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidatePosition {
    pub score: f64,
    pub a: CustomerId,
    pub b: CustomerId,
}

impl CandidatePosition {
    fn of(c: &Candidate) -> Self {
        CandidatePosition {
            score: c.score,
            a: c.a.id,
            b: c.b.id,
        }
    }

    fn is_before(&self, c: &Candidate) -> bool {
        let key = |p: &CandidatePosition| (std::cmp::Reverse(ordered(p.score)), p.a, p.b);
        key(self) < key(&CandidatePosition::of(c))
    }
}

/// Scores in thousandths, to order without floating-point comparisons.
fn ordered(score: f64) -> i64 {
    (score * 1000.0).round() as i64
}

/// Which rows a merge moved onto the survivor, to move back on undo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub orders: Vec<i64>,
    pub interactions: Vec<i64>,
    pub consent_events: Vec<i64>,
    /// External ids that pointed at the merged customer and now point at the survivor.
    pub aliases: Vec<String>,
}

/// A recorded merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub id: i64,
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
        id: row.try_get("id")?,
        survivor_id: CustomerId(row.try_get("survivor_id")?),
        merged_id: CustomerId(row.try_get("merged_id")?),
        merged_external_id: row.try_get("merged_external_id")?,
        survivor_before: json(row, "survivor_before")?,
        survivor_after: json(row, "survivor_after")?,
        merged_profile: json(row, "merged_profile")?,
        merged_created_at: row.try_get("merged_created_at")?,
        moved: json(row, "moved")?,
        merged_by: row.try_get("merged_by")?,
        merged_at: from_micros(row.try_get("merged_at")?),
        undone_by: row.try_get("undone_by")?,
        undone_at: row.try_get::<Option<i64>, _>("undone_at")?.map(from_micros),
    })
}

fn to_json<T: Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::corrupt("customer_merges", e.to_string()))
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(Invalid::one(field, message))
}

async fn ids_of(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sql: &'static str,
    customer: CustomerId,
) -> StoreResult<Vec<i64>> {
    Ok(sqlx::query_scalar(sql)
        .bind(customer.0)
        .fetch_all(&mut **tx)
        .await?)
}

/// Moves the given rows (and, for orders, their lines) to `to`.
async fn move_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    moved: &Moved,
    to: CustomerId,
) -> StoreResult<()> {
    for (table, ids) in [
        ("orders", &moved.orders),
        ("interactions", &moved.interactions),
        ("consent_events", &moved.consent_events),
    ] {
        for chunk in ids.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 2)).collect();
            let list = list.join(",");
            let mut statements = vec![format!(
                "UPDATE {table} SET customer_id = $1 WHERE id IN ({list})"
            )];
            if table == "orders" {
                statements.push(format!(
                    "UPDATE order_lines SET customer_id = $1 WHERE order_id IN ({list})"
                ));
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
async fn lock_pair(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    a: CustomerId,
    b: CustomerId,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM customers WHERE id IN ($1, $2) ORDER BY id FOR UPDATE")
            .bind(a.0.min(b.0))
            .bind(a.0.max(b.0))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Likely duplicate pairs, best first, after `after`, with at least `min_score`.
    /// With `of`, only the pairs that customer is part of.
    pub async fn duplicate_candidates(
        &self,
        of: Option<CustomerId>,
        min_score: f64,
        after: Option<CandidatePosition>,
        limit: usize,
    ) -> StoreResult<crate::Page<Candidate, CandidatePosition>> {
        let (lo, hi) = key_range();
        let query = match of {
            None => sqlx::query(
                "SELECT term, customer_id FROM customer_search_terms \
                 WHERE term >= $1 AND term < $2 ORDER BY term, customer_id",
            )
            .bind(lo)
            .bind(hi),
            Some(id) => sqlx::query(
                "SELECT t.term, t.customer_id FROM customer_search_terms k \
                 JOIN customer_search_terms t ON t.term = k.term \
                 WHERE k.customer_id = $3 AND k.term >= $1 AND k.term < $2 ORDER BY t.term, t.customer_id",
            )
            .bind(lo)
            .bind(hi)
            .bind(id.0),
        };
        let mut pairs: HashMap<(i64, i64), BTreeSet<MatchReason>> = HashMap::new();
        let mut group: Vec<i64> = Vec::new();
        let mut current = String::new();
        let mut close = |term: &str, group: &mut Vec<i64>| {
            if let Some(reason) = MatchReason::of_key(term)
                && group.len() >= 2
                && group.len() <= reason.group_limit()
            {
                for (i, &a) in group.iter().enumerate() {
                    for &b in &group[i + 1..] {
                        if of.is_none_or(|o| o.0 == a || o.0 == b) {
                            pairs.entry((a, b)).or_default().insert(reason);
                        }
                    }
                }
            }
            group.clear();
        };
        let mut rows = query.fetch(self.pool());
        while let Some(row) = rows.try_next().await? {
            let term: String = row.try_get("term")?;
            let id: i64 = row.try_get("customer_id")?;
            if term != current {
                close(&current, &mut group);
                current = term;
            }
            group.push(id);
        }
        drop(rows);
        close(&current, &mut group);

        let mut ids: Vec<i64> = pairs.keys().flat_map(|&(a, b)| [a, b]).collect();
        ids.sort_unstable();
        ids.dedup();
        let sides = self.candidate_sides(&ids).await?;
        let mut out: Vec<Candidate> = pairs
            .into_iter()
            .filter_map(|((a, b), reasons)| {
                let (a, b) = (sides.get(&a)?.clone(), sides.get(&b)?.clone());
                let similarity = name_similarity(&a.name, &b.name);
                Some(Candidate {
                    score: score(&reasons, similarity),
                    name_similarity: (similarity * 1000.0).round() / 1000.0,
                    a,
                    b,
                    reasons,
                })
            })
            .filter(|c| c.score >= min_score)
            .filter(|c| after.is_none_or(|p| p.is_before(c)))
            .collect();
        out.sort_by_key(|c| (std::cmp::Reverse(ordered(c.score)), c.a.id, c.b.id));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(crate::Page::cut(out, limit, CandidatePosition::of))
    }

    async fn candidate_sides(&self, ids: &[i64]) -> StoreResult<HashMap<i64, CandidateSide>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 1)).collect();
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT id, external_id, name, email, phone FROM customers WHERE id IN ({})",
                list.join(",")
            )));
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.pool()).await? {
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

    /// Merges `merged` into `survivor`: its orders (with lines), interactions and consent
    /// history move over, empty profile fields are filled from it, its external id keeps
    /// pointing at the survivor, the aggregates are recomputed, and the merge is recorded so
    /// it can be undone. All in one transaction.
    pub async fn merge_customers(
        &self,
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
        let mut w = self.begin_write().await?;
        lock_pair(&mut w.tx, self.backend(), survivor, merged).await?;
        let s = fetch(&mut w.tx, survivor).await?;
        let m = match fetch(&mut w.tx, merged).await {
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
                .fetch_all(&mut *w.tx)
                .await?;
        let moved = Moved {
            orders: ids_of(
                &mut w.tx,
                "SELECT id FROM orders WHERE customer_id = $1 ORDER BY id",
                merged,
            )
            .await?,
            interactions: ids_of(
                &mut w.tx,
                "SELECT id FROM interactions WHERE customer_id = $1 ORDER BY id",
                merged,
            )
            .await?,
            consent_events: ids_of(
                &mut w.tx,
                "SELECT id FROM consent_events WHERE customer_id = $1 ORDER BY id",
                merged,
            )
            .await?,
            aliases,
        };
        move_rows(&mut w.tx, &moved, survivor).await?;
        delete_tx(&mut w.tx, merged).await?;
        rewrite(&mut w.tx, survivor, &after.data, &after.consents, &s.data).await?;
        stats::rebuild(
            &mut w.tx,
            self.reporting_currency(),
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
        .fetch_one(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE customer_aliases SET customer_id = $1 WHERE customer_id = $2")
            .bind(survivor.0)
            .bind(merged.0)
            .execute(&mut *w.tx)
            .await?;
        if let Some(x) = m.data.external_id.as_ref().filter(|_| !adopt_external_id) {
            sqlx::query(
                "INSERT INTO customer_aliases (external_id, customer_id, merge_id) VALUES ($1, $2, $3)",
            )
            .bind(x.clone())
            .bind(survivor.0)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        }
        let merge = self.merge_in(&mut w.tx, id).await?;
        w.commit().await?;
        Ok(merge)
    }

    /// Undoes a merge: the merged customer comes back (same id when it is free) with its
    /// profile, and the rows that moved go back to it; the survivor's profile returns to
    /// what it was, keeping edits made since. A merge can be undone while no later merge
    /// involves its survivor (undo that one first).
    pub async fn undo_merge(&self, merge_id: i64, by: &str) -> StoreResult<Merge> {
        let mut w = self.begin_write().await?;
        let merge = self.merge_in(&mut w.tx, merge_id).await?;
        if merge.undone_at.is_some() {
            return Err(StoreError::Refused(format!(
                "merge {merge_id} was undone already"
            )));
        }
        let later: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(id) FROM customer_merges WHERE id > $1 AND undone_at IS NULL \
             AND (survivor_id = $2 OR merged_id = $2)",
        )
        .bind(merge_id)
        .bind(merge.survivor_id.0)
        .fetch_one(&mut *w.tx)
        .await?;
        if let Some(later) = later {
            return Err(StoreError::Refused(format!(
                "customer {} was in a later merge ({later}); undo that one first",
                merge.survivor_id
            )));
        }
        let survivor = merge.survivor_id;
        lock_pair(&mut w.tx, self.backend(), survivor, merge.merged_id).await?;
        let s = fetch(&mut w.tx, survivor).await?;
        let current = Profile {
            data: s.data.clone(),
            consents: s.consents.clone(),
        };
        let restored = unmerge_profile(&merge.survivor_before, &merge.survivor_after, &current);
        rewrite(
            &mut w.tx,
            survivor,
            &restored.data,
            &restored.consents,
            &s.data,
        )
        .await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
            .bind(merge.merged_id.0)
            .fetch_optional(&mut *w.tx)
            .await?;
        let back = match taken {
            None => merge.merged_id,
            Some(_) => CustomerId(
                self.backend()
                    .reserve_ids(&mut w.tx, "customers", 1)
                    .await?
                    .first()
                    .copied()
                    .ok_or_else(|| StoreError::Config("no customer id reserved".into()))?,
            ),
        };
        sqlx::query("DELETE FROM customer_aliases WHERE merge_id = $1")
            .bind(merge_id)
            .execute(&mut *w.tx)
            .await?;
        reinsert(
            &mut w.tx,
            back,
            &merge.merged_profile.data,
            &merge.merged_profile.consents,
            merge.merged_created_at,
        )
        .await?;
        move_rows(&mut w.tx, &merge.moved, back).await?;
        for alias in &merge.moved.aliases {
            sqlx::query("UPDATE customer_aliases SET customer_id = $1 WHERE external_id = $2")
                .bind(back.0)
                .bind(alias.clone())
                .execute(&mut *w.tx)
                .await?;
        }
        stats::rebuild(
            &mut w.tx,
            self.reporting_currency(),
            Some(&[survivor.0.min(back.0), survivor.0.max(back.0)]),
        )
        .await?;
        sqlx::query(
            "UPDATE customer_merges SET undone_by = $1, undone_at = $2, merged_id = $3 WHERE id = $4",
        )
        .bind(by.to_owned())
        .bind(now_micros())
        .bind(back.0)
        .bind(merge_id)
        .execute(&mut *w.tx)
        .await?;
        let merge = self.merge_in(&mut w.tx, merge_id).await?;
        w.commit().await?;
        Ok(merge)
    }

    async fn merge_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
    ) -> StoreResult<Merge> {
        let row = sqlx::query(AssertSqlSafe(format!("{MERGE_SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound { what: "merge" })?;
        merge_from_row(&row)
    }

    pub async fn get_merge(&self, id: i64) -> StoreResult<Merge> {
        let row = sqlx::query(AssertSqlSafe(format!("{MERGE_SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "merge" })?;
        merge_from_row(&row)
    }

    /// Merges, newest first, optionally only those involving one customer.
    pub async fn list_merges(
        &self,
        customer: Option<CustomerId>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<crate::Page<Merge, i64>> {
        let mut s = crate::sql::Select::new(MERGE_SELECT);
        if let Some(c) = customer {
            s.filter("(survivor_id = {} OR merged_id = {})", c.0)?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b)?;
        }
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(merge_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(crate::Page::cut(items, limit, |m| m.id))
    }
}
