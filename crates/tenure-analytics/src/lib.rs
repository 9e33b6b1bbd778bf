//! Customer-base analytics: the BG/NBD, Pareto/NBD and Gamma-Gamma models (and the shifted-beta-
//! geometric model for subscriptions) fitted by maximum likelihood with analytic gradients,
//! per-customer predictions (expected purchases, P(alive), expected spend, discounted CLV)
//! and the summaries they are computed from; and descriptive measures of the base: RFM scores
//! and segments, acquisition cohorts, monthly retention, revenue concentration and a retention
//! profit simulator.
//!
//! Architecture invariant: no I/O; plain numbers in, plain numbers out.

pub mod attrition;
pub mod bgnbd;
pub mod clv;
pub mod cohorts;
pub mod concentration;
pub mod gamma_gamma;
pub mod holdout;
pub mod optimize;
pub mod pareto_nbd;
pub mod profit;
pub mod recommend;
pub mod rfm;
pub mod sbg;
pub mod special;
pub mod summary;

pub use summary::{Summary, summarize};
