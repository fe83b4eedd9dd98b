//! The actions, end to end through the real binary and the test provider.

mod get;
mod register;
mod setup;
mod token;
