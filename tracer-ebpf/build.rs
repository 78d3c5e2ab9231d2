//! Rebuild the programs when bpf-linker changes (as in the aya template).
fn main() {
    let linker = which::which("bpf-linker").unwrap_or_default();
    println!("cargo:rerun-if-changed={}", linker.display());
}
