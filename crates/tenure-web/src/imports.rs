//! Imports started from the browser: each runs in the background over its uploaded file
//! (the same import code as the command line) while its page shows the progress.
//!
//! Runs are kept in this server's memory for a day: the page that follows an upload is
//! served by the server that took it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenure_app::import::Summary;
use tenure_domain::ids::StaffUserId;

/// How long a finished run stays visible.
const KEEP: Duration = Duration::from_secs(24 * 3600);

/// Where a run stands.
#[derive(Debug, Clone)]
pub enum Outcome {
    Running,
    Done(Summary),
    Failed(String),
}

/// One import started from the browser.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub user: StaffUserId,
    pub kind: String,
    pub file_name: String,
    pub encoding: String,
    /// Size of the file; progress is counted in decoded bytes, which for a Chinese
    /// file in GB18030 run ahead of the raw ones, so the share is capped below 100 % while
    /// running.
    pub total_bytes: u64,
    pub done_bytes: AtomicU64,
    pub started: Instant,
    pub outcome: Mutex<Outcome>,
}

impl Run {
    /// The share done, 0–1.
    pub fn share(&self) -> f64 {
        match self.outcome() {
            Outcome::Running => {
                let done = self.done_bytes.load(Ordering::Relaxed) as f64;
                (done / self.total_bytes.max(1) as f64).min(0.99)
            }
            _ => 1.0,
        }
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
            .lock()
            .map(|o| o.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn finish(&self, o: Outcome) {
        match self.outcome.lock() {
            Ok(mut g) => *g = o,
            Err(e) => *e.into_inner() = o,
        }
    }
}

#[derive(Debug, Default)]
pub struct Imports {
    runs: Mutex<HashMap<String, Arc<Run>>>,
}

impl Imports {
    pub fn start(&self, run: Run) -> Arc<Run> {
        let run = Arc::new(run);
        if let Ok(mut map) = self.runs.lock() {
            map.retain(|_, r| r.started.elapsed() < KEEP);
            map.insert(run.id.clone(), run.clone());
        }
        run
    }

    /// The run `id`, when `user` started it.
    pub fn get(&self, id: &str, user: StaffUserId) -> Option<Arc<Run>> {
        self.runs
            .lock()
            .ok()?
            .get(id)
            .filter(|r| r.user == user)
            .cloned()
    }

    /// `user`'s runs, newest first.
    pub fn of(&self, user: StaffUserId) -> Vec<Arc<Run>> {
        let mut runs: Vec<Arc<Run>> = self
            .runs
            .lock()
            .map(|m| m.values().filter(|r| r.user == user).cloned().collect())
            .unwrap_or_default();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started));
        runs
    }
}
