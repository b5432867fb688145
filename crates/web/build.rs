//! Bootstrap Italia and htmx come from npm (package.json beside this file) and are embedded in the binary.
//! They are never copied into the repository: when node_modules is missing, this installs it with `npm ci`.

use std::path::Path;
use std::process::Command;

fn main() {
    // The Fluent files are embedded at compile time (i18n.rs): a new or changed one must rebuild the shell.
    println!("cargo:rerun-if-changed=../../locales");
    println!("cargo:rerun-if-changed=package.json");
    println!("cargo:rerun-if-changed=package-lock.json");
    println!("cargo:rerun-if-changed=node_modules/bootstrap-italia/package.json");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let marker = Path::new(&dir).join("node_modules/bootstrap-italia/dist/css/bootstrap-italia.min.css");
    if marker.exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status();
    match status {
        Ok(s) if s.success() && marker.exists() => {}
        Ok(s) => panic!("`npm ci` in {dir} failed ({s}); the web assets (Bootstrap Italia) are needed to build agilekit"),
        Err(e) => panic!("could not run npm in {dir} ({e}); install Node.js and npm to build agilekit"),
    }
}
