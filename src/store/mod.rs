//! The store: what the helper keeps on disk between runs. [`cache`] holds one JSON file per
//! account (written atomically, read lock-free on the hot path); [`lock`] serialises the
//! processes (on this machine and, on shared file systems, across machines) that may change it;
//! [`files`] writes private files atomically.

pub mod cache;
pub mod files;
pub mod lock;
