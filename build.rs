//! Link the Linux binary as a non-PIE executable: the dynamic loader then has no relative
//! relocations to apply at start-up (about 4,600 otherwise), which takes a cache-hit `get` from
//! ~0.98× to ~0.95× of `git credential-store get` (see README, "Reliability and performance").
//! The cost is that the executable's own image is not address-randomised (shared libraries,
//! stack and heap still are). Set GIT_CREDENTIAL_IAM_PIE=1 when building to keep a PIE binary.

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_CREDENTIAL_IAM_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let keep_pie = std::env::var("GIT_CREDENTIAL_IAM_PIE").is_ok_and(|v| v == "1");
    if linux && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
