//! Rebuilds the crate when a migration file is added, so `embed_migrations!` picks it up.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
