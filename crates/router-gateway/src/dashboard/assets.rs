//! The dashboard's files, compiled into the binary: it works offline, with nothing to
//! install next to it and no CDN. The chart code is our own (`chart.js`, a few hundred
//! lines drawing SVG), not a vendored library.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const LOGIN_HTML: &str = include_str!("../../assets/dashboard/login.html");
pub const SETUP_HTML: &str = include_str!("../../assets/dashboard/setup.html");
pub const APP_HTML: &str = include_str!("../../assets/dashboard/app.html");

/// A static file served under `/dashboard/assets/`.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    /// Served without a session: the login page needs it.
    pub public: bool,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(
        name: &'static str,
        content_type: &'static str,
        body: &'static str,
        public: bool,
    ) -> Asset {
        Asset { name, content_type, body, public, etag: OnceLock::new() }
    }

    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.body.as_bytes());
            let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    }

    /// The file, or 304 when the browser's copy is current.
    pub fn response(&self, request_headers: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = request_headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            self.body.into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        // Revalidated on every load, so a new binary's files are picked up at once.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(etag) {
            headers.insert(header::ETAG, v);
        }
        response
    }
}

static ASSETS: [Asset; 4] = [
    Asset::new(
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard/style.css"),
        true,
    ),
    Asset::new(
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/i18n.js"),
        false,
    ),
    Asset::new(
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/chart.js"),
        false,
    ),
    Asset::new(
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/app.js"),
        false,
    ),
];

/// The asset with this file name.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_and_revalidated_by_etag() {
        let css = find("style.css").unwrap();
        assert!(css.public);
        assert!(!find("app.js").unwrap().public);
        assert!(find("../Cargo.toml").is_none());
        let first = css.response(&HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(css.response(&headers).status(), StatusCode::NOT_MODIFIED);
    }
}
