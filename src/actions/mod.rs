//! The actions a user or git asks for: git's `get`/`erase` and `login`/`logout`/`status`
//! ([`helper`]), `token` and `import` ([`tokens`], printing through [`output`]), `register` and
//! `setup`, all obtaining tokens through one sign-in pipeline ([`pipeline`]). They are the only code that combines the store, the provider and the person.

pub mod helper;
pub mod output;
pub mod pipeline;
pub mod register;
pub mod setup;
pub mod tokens;
