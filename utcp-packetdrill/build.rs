//! Compiles the C shim for the two variadic entry points of the packetdrill
//! interface (fcntl and ioctl): stable Rust cannot define a C-variadic function.
fn main() {
    println!("cargo:rerun-if-changed=csrc/variadic.c");
    cc::Build::new()
        .file("csrc/variadic.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("utcp_pd_variadic");
}
