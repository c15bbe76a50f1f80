//! Link settings of the `promlake` binary.

fn main() {
    // Linux: a position-dependent executable, as Go builds Prometheus and Thanos by default.
    // As a PIE the binary carries ~260k relative relocations: the dynamic loader reads 6.2 MB
    // of them and writes 4.4 MB of relocated data at every start, and both stay resident for
    // the life of the process (~10 MB of a compactor's ~58 MB peak, 12 of an idle server's 16).
    // Shared libraries, heap and stacks are still randomised.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
