//! Installs the front end's third-party packages (Leaflet, leaflet.markercluster) with `npm ci`
//! when they are missing, so that `include_bytes!` in `src/http/assets.rs` finds them. They come
//! from the npm registry at build time, pinned by `web/package-lock.json`; none is committed.

use std::path::Path;
use std::process::Command;

/// The files the binary embeds; any of them missing means `npm ci` has not run.
const VENDORED: [&str; 5] = [
    "node_modules/leaflet/dist/leaflet.js",
    "node_modules/leaflet/dist/leaflet.css",
    "node_modules/leaflet.markercluster/dist/leaflet.markercluster.js",
    "node_modules/leaflet.markercluster/dist/MarkerCluster.css",
    "node_modules/leaflet.markercluster/dist/MarkerCluster.Default.css",
];

fn main() -> Result<(), String> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let web = Path::new(&manifest).join("web");
    for watched in [
        "web/package.json",
        "web/package-lock.json",
        "web/static",
        "openapi.json",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }
    for file in VENDORED {
        println!("cargo:rerun-if-changed=web/{file}");
    }
    if VENDORED.iter().all(|file| web.join(file).is_file()) {
        return Ok(());
    }
    let npm = std::env::var("EMBERLINE_NPM").unwrap_or_else(|_| "npm".into());
    let status = Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&web)
        .status()
        .map_err(|error| {
            format!("cannot run `{npm} ci` in {}: {error} (install Node.js and npm, e.g. `apt-get install nodejs npm`, or set EMBERLINE_NPM)", web.display())
        })?;
    if !status.success() {
        return Err(format!("`{npm} ci` in {} failed: {status}", web.display()));
    }
    match VENDORED.iter().find(|file| !web.join(file).is_file()) {
        Some(missing) => Err(format!("`npm ci` did not install web/{missing}")),
        None => Ok(()),
    }
}
