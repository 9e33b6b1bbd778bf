//! Duplicate customers: the candidate pairs (kept in a table, maintained inside every
//! customer write and rebuilt on demand), merging a duplicate into a survivor, undoing it.

use std::collections::{BTreeSet, HashMap};

use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::duplicates::{
    CandidatePosition, MatchReason, Pairs, ScoredPair, add_group_pairs,
};
use tenure_domain::ids::{CustomerId, MergeId};
use tenure_domain::jobs::JobKind;
use tenure_store::WriteTx;
use tenure_store::customers::KeyChange;
use tenure_store::duplicates::{Candidate, Merge};

use crate::{App, AppError, AppResult, Listed, PageRequest, listed, require};

/// Pairs scoring below this are not listed unless asked for: a shared name alone.
pub const DEFAULT_MIN_SCORE: f64 = 0.5;

/// More match-key changes than this in one write (a bulk load) queue a rebuild instead of
/// updating pair by pair.
const BULK_KEY_CHANGES: usize = 2_000;

/// The key that keeps a second rebuild from being queued while one is pending.
pub(crate) const REBUILD_KEY: &str = "duplicates_rebuild:pending";

/// A score bound given by a client, 0–1, in thousandths.
fn min_score_milli(min_score: Option<f64>) -> AppResult<i64> {
    match min_score.unwrap_or(DEFAULT_MIN_SCORE) {
        s if (0.0..=1.0).contains(&s) => Ok((s * 1000.0).round() as i64),
        s => Err(AppError::parameter(
            "min_score",
            format!("must be between 0 and 1 (got {s})"),
        )),
    }
}

/// Scores the pairs, reading the names they need in `names`.
fn scored(pairs: Pairs, names: &HashMap<i64, String>) -> Vec<ScoredPair> {
    let mut out: Vec<ScoredPair> = pairs
        .into_iter()
        .filter_map(|((a, b), reasons)| {
            Some(ScoredPair::new(
                CustomerId(a),
                CustomerId(b),
                reasons,
                names.get(&a)?,
                names.get(&b)?,
            ))
        })
        .collect();
    out.sort_by_key(|p| (p.a, p.b));
    out
}

/// Brings the stored pairs up to date after a write whose customers gained or lost the
/// match keys `changes`: every customer who changed has all their pairs recomputed; the
/// other holders of a key too when the key's group crossed its limit (a name shared by
/// too many stops, or starts again, to say anything). A bulk write queues a rebuild.
pub(crate) async fn maintain(tx: &mut WriteTx<'_>, changes: Vec<KeyChange>) -> AppResult<()> {
    if changes.len() > BULK_KEY_CHANGES {
        crate::jobs::queue_once(tx, JobKind::DuplicatesRebuild, REBUILD_KEY).await?;
        return Ok(());
    }
    let mut members_of: HashMap<String, Vec<i64>> = HashMap::new();
    let mut affected: BTreeSet<i64> = changes.iter().map(|c| c.customer.0).collect();
    for c in &changes {
        let Some(reason) = MatchReason::of_key(&c.key) else {
            continue;
        };
        let limit = reason.group_limit();
        let members = tx.key_members(&c.key, limit + 1).await?;
        let crossed = if c.joined {
            members.len() == limit + 1
        } else {
            members.len() == limit
        };
        if crossed {
            affected.extend(&members);
        }
        members_of.insert(c.key.clone(), members);
    }
    let mut pairs = Pairs::new();
    for &a in &affected {
        for key in tx.match_keys_of(CustomerId(a)).await? {
            let Some(reason) = MatchReason::of_key(&key) else {
                continue;
            };
            let members = match members_of.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let m = tx.key_members(&key, reason.group_limit() + 1).await?;
                    members_of.insert(key.clone(), m.clone());
                    m
                }
            };
            add_group_pairs(&key, &members, Some(a), &mut pairs);
        }
    }
    let mut ids: Vec<i64> = pairs.keys().flat_map(|&(a, b)| [a, b]).collect();
    ids.sort_unstable();
    ids.dedup();
    let names = tx.customer_names(&ids).await?;
    let affected: Vec<CustomerId> = affected.into_iter().map(CustomerId).collect();
    tx.replace_pairs_of(&affected, &scored(pairs, &names))
        .await?;
    Ok(())
}

impl App {
    /// Likely duplicate pairs, best first; with `of`, that customer's.
    pub async fn duplicate_candidates(
        &self,
        actor: &Actor,
        of: Option<CustomerId>,
        min_score: Option<f64>,
        page: &PageRequest,
    ) -> AppResult<Listed<Candidate>> {
        require(actor, Permission::ReadCustomers)?;
        let min = min_score_milli(min_score)?;
        let (limit, after) = (page.limit()?, page.after::<CandidatePosition>()?);
        if let Some(c) = of {
            self.store().get_customer(c).await?;
        }
        let found = self
            .store()
            .duplicate_candidates(of, min, after, limit)
            .await?;
        Ok(listed(found, |c| c))
    }

    /// Recomputes every candidate pair from the match keys, replacing the stored ones.
    /// Returns the number of pairs.
    pub async fn rebuild_duplicates(&self, actor: &Actor) -> AppResult<u64> {
        require(actor, Permission::WriteCustomers)?;
        // Read and written in one transaction, so no customer write falls between the
        // scan and the replacement.
        let mut uow = self.begin(actor).await?;
        let mut pairs = Pairs::new();
        uow.tx
            .scan_key_groups(|key, members| add_group_pairs(key, members, None, &mut pairs))
            .await?;
        let mut ids: Vec<i64> = pairs.keys().flat_map(|&(a, b)| [a, b]).collect();
        ids.sort_unstable();
        ids.dedup();
        let names = uow.tx.customer_names(&ids).await?;
        let pairs = scored(pairs, &names);
        let n = uow.tx.replace_all_pairs(&pairs).await?;
        uow.emit(Event::DuplicatesRebuilt { pairs: n });
        uow.commit().await?;
        Ok(n)
    }

    /// Merges `duplicate` into `survivor` with its whole history; recorded so it can be
    /// undone.
    pub async fn merge_customers(
        &self,
        actor: &Actor,
        survivor: CustomerId,
        duplicate: CustomerId,
    ) -> AppResult<Merge> {
        require(actor, Permission::DeleteCustomers)?;
        let mut uow = self.begin(actor).await?;
        let merge = uow
            .tx
            .merge_customers(survivor, duplicate, &actor.display_name())
            .await?;
        uow.emit(Event::CustomersMerged {
            merge: merge.id,
            survivor,
            merged: duplicate,
        });
        uow.commit().await?;
        Ok(merge)
    }

    /// Undoes a merge: the merged customer comes back with its history.
    pub async fn undo_merge(&self, actor: &Actor, merge: MergeId) -> AppResult<Merge> {
        require(actor, Permission::DeleteCustomers)?;
        let mut uow = self.begin(actor).await?;
        let m = uow.tx.undo_merge(merge, &actor.display_name()).await?;
        uow.emit(Event::MergeUndone {
            merge: m.id,
            survivor: m.survivor_id,
            restored: m.merged_id,
        });
        uow.commit().await?;
        Ok(m)
    }

    pub async fn get_merge(&self, actor: &Actor, id: MergeId) -> AppResult<Merge> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self.store().get_merge(id).await?)
    }

    /// Merges, newest first; with `customer`, those it was part of.
    pub async fn list_merges(
        &self,
        actor: &Actor,
        customer: Option<CustomerId>,
        page: &PageRequest,
    ) -> AppResult<Listed<Merge>> {
        require(actor, Permission::ReadCustomers)?;
        let (limit, before) = (page.limit()?, page.after::<MergeId>()?);
        let found = self.store().list_merges(customer, before, limit).await?;
        Ok(listed(found, |m| m))
    }
}
