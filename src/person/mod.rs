//! The person at the keyboard: where instructions may be shown ([`prompt`]), the device
//! sign-in as they see it ([`signin`], with a [`qr`] code, a [`browser`] tab and a live
//! [`progress`] line), and the password prompts of the deprecated password flow ([`askpass`]).
//! Nothing here writes the cache or talks to git.

pub mod askpass;
pub mod browser;
pub mod progress;
pub mod prompt;
pub mod qr;
pub mod signin;
