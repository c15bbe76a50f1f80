//! Compiles the `.proto` files under `proto/` with protox (pure Rust, no system
//! `protoc`) and generates prost messages plus tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `compile_fds` does not emit rerun-if-changed lines itself.
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(
        [
            "prometheus/types.proto",
            "prometheus/remote.proto",
            "thanos/labels.proto",
            "thanos/types.proto",
            "thanos/store.proto",
            "thanos/info.proto",
            "hintspb/hints.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
