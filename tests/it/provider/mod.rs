//! Providers: scripted fakes that misbehave, a private CA, and a second real provider.

mod faults;
mod glewlwyd;
mod tls;
