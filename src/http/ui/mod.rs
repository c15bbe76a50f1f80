//! The web UI of `promlake query` (and of `promlake up`, which serves query's router): the
//! query page (`/graph`, `/` redirects there), the stores page (`/stores`) and the bucket page
//! (`/blocks`), as Prometheus's and Thanos's UIs have them. `promlake tools bucket web` serves
//! the bucket page alone ([`bucket_web_router`]).
//!
//! The pages are static HTML, CSS and vanilla JavaScript embedded in the binary; they read the
//! JSON APIs (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/stores`, `/api/v1/blocks`).
//! [`UiState`] holds what the UI APIs read beyond the query view: the endpoint set (health)
//! and the bucket (block metas).

use super::{blocks, stores};
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use promlake_engine::Bucket;
use promlake_engine::fanout::Fanout;
use promlake_engine::fanout::endpoints::EndpointSet;
use std::sync::{Arc, OnceLock};

/// The page shell: nav, one `<main>`, the page's script.
const SHELL: &str = include_str!("assets/shell.html");

/// Static files under `/static/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("assets/style.css")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("assets/common.js")),
    ("graph.js", "text/javascript; charset=utf-8", include_str!("assets/graph.js")),
    ("stores.js", "text/javascript; charset=utf-8", include_str!("assets/stores.js")),
    ("blocks.js", "text/javascript; charset=utf-8", include_str!("assets/blocks.js")),
];

/// What the UI's own APIs read: the endpoint set, the local bucket, the merged view. Cheap to
/// clone; each part is set once, when the querier has it.
#[derive(Debug, Clone, Default)]
pub struct UiState {
    pub(super) endpoints: Arc<OnceLock<Arc<EndpointSet>>>,
    pub(super) bucket: Arc<OnceLock<Bucket>>,
    pub(super) fanout: Arc<OnceLock<Fanout>>,
    /// The label `/api/v1/blocks` names (Thanos bucket web's `--label`).
    pub(super) label: Arc<OnceLock<String>>,
}

impl UiState {
    /// A state serving only the bucket page over `bucket`, naming `label` in `/api/v1/blocks`.
    pub fn for_bucket(bucket: Bucket, label: String) -> Self {
        let st = UiState::default();
        let _ = st.bucket.set(bucket);
        let _ = st.label.set(label);
        st
    }
}

/// The pages and the UI APIs of the querier.
pub(super) fn router<S: Clone + Send + Sync + 'static>(ui: UiState) -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/graph") }))
        .route("/graph", get(|| async { page("graph", "Query", true) }))
        .route("/stores", get(|| async { page("stores", "Stores", true) }))
        .route("/blocks", get(|| async { page("blocks", "Bucket", true) }))
        .route("/static/{file}", get(asset))
        .route("/api/v1/stores", get(stores::stores))
        .route("/api/v1/blocks", get(blocks::blocks))
        .with_state(ui)
}

/// The bucket page alone (`promlake tools bucket web`), with `/api/v1/blocks`.
pub fn bucket_web_router<S: Clone + Send + Sync + 'static>(ui: UiState) -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/blocks") }))
        .route("/blocks", get(|| async { page("blocks", "Bucket", false) }))
        .route("/static/{file}", get(asset))
        .route("/api/v1/blocks", get(blocks::blocks))
        .with_state(ui)
}

/// The shell filled for one page; `querier` adds the query and stores links to the nav.
fn page(name: &str, title: &str, querier: bool) -> Html<String> {
    let link = |href: &str, text: &str| {
        let class = if href.trim_start_matches('/') == name { " class=\"active\"" } else { "" };
        format!("<a href=\"{href}\"{class}>{text}</a>")
    };
    let mut nav = String::new();
    if querier {
        nav.push_str(&link("/graph", "Query"));
        nav.push_str(&link("/stores", "Stores"));
    }
    nav.push_str(&link("/blocks", "Bucket"));
    Html(SHELL.replace("{{title}}", title).replace("{{nav}}", &nav).replace("{{page}}", name))
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
