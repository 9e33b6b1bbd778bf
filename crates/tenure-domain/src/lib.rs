//! Tenure's domain: identifiers, roles, the customer record's value types and their
//! validation, and the pure rules around them.
//!
//! Architecture invariant: this crate does no I/O. It knows nothing of HTTP, SQL or files,
//! so everything in it can be tested with plain values and cannot fail for outside reasons.

pub mod access;
pub mod calendar;
pub mod catalog;
pub mod changes;
pub mod cursor;
pub mod customer;
pub mod duplicates;
pub mod ids;
pub mod interaction;
pub mod jobs;
pub mod journey;
pub mod lifecycle;
pub mod loyalty;
mod macros;
pub mod money;
pub mod prediction;
pub mod search;
pub mod segment;
pub mod service;
pub mod survey;
pub mod timeline;
pub mod validation;
pub mod vcard;
pub mod webhook;

pub use validation::{FieldError, Invalid};
