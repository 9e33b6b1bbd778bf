//! Customer-base analytics: the BG/NBD, Pareto/NBD and Gamma-Gamma models (and the shifted-beta-
//! geometric model for subscriptions) fitted by maximum likelihood with analytic gradients,
//! per-customer predictions (expected purchases, P(alive), expected spend, discounted CLV)
//! and the summaries they are computed from.
//!
//! Architecture invariant: no I/O; plain numbers in, plain numbers out.

pub mod bgnbd;
pub mod clv;
pub mod gamma_gamma;
pub mod holdout;
pub mod optimize;
pub mod pareto_nbd;
pub mod recommend;
pub mod sbg;
pub mod special;
pub mod summary;

pub use summary::{Summary, summarize};
