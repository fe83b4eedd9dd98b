//! The actions, end to end through the real binary and the test provider.

mod get;
mod register;
mod resource;
mod setup;
mod token;
