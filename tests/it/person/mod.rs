//! What a person sees and types during a sign-in.

mod signin;
