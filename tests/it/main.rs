//! git-credential-iam's integration tests: ONE test binary (one link, one harness), its modules
//! mirroring the helper's rooms. `cargo test --locked` runs it with the unit tests.
//!
//! * [`support`]: the shared harness (the test provider, the git servers, Apache, glewlwyd,
//!   network file systems, terminals, processes and their output, skips).
//! * [`harness`]: the harness itself works (provider, git server, clean commands).
//! * [`git`]: real git clones and pushes through the helper.
//! * [`hostile_input`]: git's request, cache files and command lines from someone hostile
//!   (property tests, the fuzz corpus, the real binary).
//! * [`trust_boundary`]: which hosts ever see a token (submodules, look-alike URLs).
//! * [`store`]: the cache and its lock on a network file system, and under kills and stops.
//! * [`provider`]: providers that misbehave (scripted fakes), a private CA, and glewlwyd.
//! * [`person`]: what a person sees: the sign-in prompt, QR code, browser, status line.
//! * [`actions`]: `get`/`erase`/`login`/`logout`/`status`, `token`/`import`, `register` and the
//!   password flow, `setup`.
//! * [`apache`], [`packaging`], [`contrib`], [`demo`]: what ships beside the helper.

mod support;

mod actions;
mod apache;
mod contrib;
mod demo;
mod git;
mod harness;
mod hostile_input;
mod packaging;
mod person;
mod provider;
mod store;
mod trust_boundary;
