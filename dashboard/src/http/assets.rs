//! The page and its assets, embedded in the binary. Our own files are `dashboard/web/static/`;
//! Leaflet and leaflet.markercluster come from npm at build time (`build.rs` runs `npm ci`) and
//! are never committed. Nothing is fetched from a CDN: the page works air-gapped.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

macro_rules! web {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)).as_slice()
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// Scripts only from this origin (no inline script can run, whatever a reading holds); tiles
/// from anywhere the operator configures.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src * data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// `(url path, content type, bytes, third party)`.
const FILES: [(&str, &str, &[u8], bool); 10] = [
    ("/", HTML, web!("static/index.html"), false),
    ("/static/app.css", CSS, web!("static/app.css"), false),
    ("/static/app.js", JS, web!("static/app.js"), false),
    ("/static/map.js", JS, web!("static/map.js"), false),
    ("/static/panels.js", JS, web!("static/panels.js"), false),
    (
        "/vendor/leaflet.js",
        JS,
        web!("node_modules/leaflet/dist/leaflet.js"),
        true,
    ),
    (
        "/vendor/leaflet.css",
        CSS,
        web!("node_modules/leaflet/dist/leaflet.css"),
        true,
    ),
    (
        "/vendor/leaflet.markercluster.js",
        JS,
        web!("node_modules/leaflet.markercluster/dist/leaflet.markercluster.js"),
        true,
    ),
    (
        "/vendor/MarkerCluster.css",
        CSS,
        web!("node_modules/leaflet.markercluster/dist/MarkerCluster.css"),
        true,
    ),
    (
        "/vendor/MarkerCluster.Default.css",
        CSS,
        web!("node_modules/leaflet.markercluster/dist/MarkerCluster.Default.css"),
        true,
    ),
];

/// The OpenAPI description of the JSON API (`dashboard/openapi.json`).
pub const OPENAPI: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"));

/// A route per embedded file.
pub fn routes() -> Router<AppState> {
    FILES
        .iter()
        .fold(Router::new(), |router, &(path, kind, bytes, vendor)| {
            router.route(path, get(move || async move { file(kind, bytes, vendor) }))
        })
}

fn file(kind: &'static str, bytes: &'static [u8], vendor: bool) -> Response {
    // Pinned third-party files change only with a new build; ours are revalidated.
    let cache = if vendor {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    let headers = [
        (header::CONTENT_TYPE, kind),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ];
    (headers, bytes).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, JSON)], OPENAPI).into_response()
}
