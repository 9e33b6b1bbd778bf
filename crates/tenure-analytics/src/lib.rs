//! Customer-base analytics: the BG/NBD and Gamma-Gamma models fitted by maximum
//! likelihood, per-customer predictions (expected purchases, P(alive), expected spend,
//! discounted CLV) and the summaries they are computed from.
//!
//! Architecture invariant: no I/O; plain numbers in, plain numbers out.

pub mod bgnbd;
pub mod clv;
pub mod gamma_gamma;
pub mod optimize;
pub mod special;
pub mod summary;

pub use summary::{Summary, summarize};
