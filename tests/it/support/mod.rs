//! The harness of git-credential-iam's integration tests, shared by every module of `tests/it`.
//!
//! * [`Idp`] runs the test OpenID provider `tests/idp/server.js` (npm `oidc-provider`, with the
//!   device flow, refresh-token rotation, introspection, revocation, open dynamic registration
//!   and a password grant). `npm ci` runs once when `tests/idp/node_modules` is missing or stale.
//!   Node.js is required: without it every test that starts an [`Idp`] panics (never skips).
//! * [`GitServer`] runs `tests/idp/git-server.js`, a git smart-HTTP server in front of a bare
//!   repository with one commit, that lets a request through only when its token is active at
//!   the [`Idp`] (RFC 7662 introspection); [`LogServer`] logs what a hostile server is sent.
//! * [`helper_cmd`] / [`git_cmd`] build commands with a clean environment rooted in a test home.
//! * [`wait_for_line`] / [`Lines`] read a child's output with a bounded wait (for the user code
//!   in the helper's device-flow prompt); [`Stream`] reads it raw, as a terminal shows it.
//! * [`Apache`], [`glewlwyd`], [`TwoMounts`]: Apache httpd with mod_auth_openidc, a second
//!   provider, and one directory mounted twice (two machines on a network file system).
//! * [`needs_root`] and the other `needs_*`: a test that cannot run here says so (never silent).
//!
//! Every wait is bounded; nothing sleeps to wait for readiness. All servers bind 127.0.0.1 only
//! and die with their [`Idp`] / [`GitServer`] value (and, through their stdin, with the test
//! process). Fixed test data: account [`ALICE`]/[`ALICE_PASSWORD`]; clients [`PUBLIC_CLIENT`],
//! [`CONF_CLIENT`] (secret [`CONF_SECRET`]), [`PW_CLIENT`], [`PW_CONF_CLIENT`], [`RS_CLIENT`].
#![allow(dead_code)]

mod account;
mod apache;
mod git_server;
pub mod glewlwyd;
mod http;
mod netfs;
mod node;
mod process;
mod provider;
mod skip;
mod stub;
mod terminal;

pub use account::*;
pub use apache::*;
pub use git_server::*;
pub use http::*;
pub use netfs::*;
pub use node::{ensure_node_modules, idp_dir};
pub use process::*;
pub use provider::*;
pub use skip::*;
pub use stub::*;
pub use terminal::*;

/// The library's items the tests use, named in this one place: when the library moves an item,
/// only its line here changes.
pub mod iam {
    pub use git_credential_iam::Secret;
    pub use git_credential_iam::{cache, protocol, qr};
}
