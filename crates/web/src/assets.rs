//! Static assets embedded in the binary: Bootstrap Italia and htmx from npm (installed by build.rs),
//! and agilekit's own few styles. Paths carry the package version so they can be cached for a year.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "node_modules/bootstrap-italia/dist/"]
#[include = "css/bootstrap-italia.min.css"]
#[include = "js/bootstrap-italia.bundle.min.js"]
#[include = "svg/sprites.svg"]
#[include = "fonts/*/*.woff2"]
#[include = "fonts/*/*.woff"]
struct BootstrapItalia;

#[derive(RustEmbed)]
#[folder = "node_modules/htmx.org/dist/"]
#[include = "htmx.min.js"]
struct Htmx;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Own;

pub const BI_VERSION: &str = "2.18.3";
pub const HTMX_VERSION: &str = "2.0.8";

fn serve(file: Option<rust_embed::EmbeddedFile>, path: &str) -> Response {
    match file {
        Some(f) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            let mut r = f.data.into_owned().into_response();
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            r
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/static/bi/{version}/{*path}`
pub async fn bootstrap_italia(Path((_version, path)): Path<(String, String)>) -> Response {
    serve(BootstrapItalia::get(&path), &path)
}

/// `/static/htmx/{version}/htmx.min.js`
pub async fn htmx(Path((_version, path)): Path<(String, String)>) -> Response {
    serve(Htmx::get(&path), &path)
}

/// `/static/own/{version}/{*path}`
pub async fn own(Path((_version, path)): Path<(String, String)>) -> Response {
    serve(Own::get(&path), &path)
}

/// A short fingerprint of agilekit's own assets, so a new build is never served an old stylesheet.
pub fn own_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for name in Own::iter() {
            if let Some(f) = Own::get(&name) {
                h.update(f.data.as_ref());
            }
        }
        hex::encode(&h.finalize()[..6])
    })
}
