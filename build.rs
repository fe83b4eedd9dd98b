//! Link the Linux binary as a non-PIE executable: the dynamic loader then has no relative
//! relocations to apply at start-up (about 4,600 otherwise), which takes a cache-hit `get` from
//! ~0.98× to ~0.95× of `git credential-store get` (see README, "Reliability and performance").
//! The cost is that the executable's own image is not address-randomised (shared libraries,
//! stack and heap still are). Set GIT_CREDENTIAL_IAM_PIE=1 when building to keep a PIE binary.
//!
//! A static build (`RUSTFLAGS="-C target-feature=+crt-static"` with an explicit `--target`, as
//! the packages are built: contrib/packaging/) is left alone: rustc links it as static-PIE, which
//! keeps ASLR and starts faster still (no dynamic loader at all); `-no-pie` would turn it into a
//! plain static executable. So is any other target whose C runtime is static (musl).

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_CREDENTIAL_IAM_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let keep_pie = std::env::var("GIT_CREDENTIAL_IAM_PIE").is_ok_and(|v| v == "1");
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
    if linux && !keep_pie && !crt_static {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
