//! The `OpenAPI` document describes exactly the JSON routes the router serves.

use crate::support::*;
use anyhow::Result;
use std::collections::BTreeSet;
use utoipa::OpenApi;
use web::routes::{Kind, ROUTES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_matches_the_router() -> Result<()> {
    let doc = serde_json::to_value(web::ApiDoc::openapi())?;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default() {
        for method in item.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> =
        ROUTES.iter().filter(|r| r.kind == Kind::Api).map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(documented, routed);
    // Every parameter is where the router reads it: a path parameter is in the path template,
    // the rest in the query (a fuzzer, or any client generated from the document, follows it).
    for (path, item) in doc["paths"].as_object().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default() {
        for (method, op) in item.as_object().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default() {
            for p in op["parameters"].as_array().cloned().unwrap_or_default() {
                let name = p["name"].as_str().unwrap_or_default();
                let in_path = path.contains(&format!("{{{name}}}"));
                assert_eq!(p["in"] == "path", in_path, "{method} {path}: parameter {name} is in {}", p["in"]);
            }
        }
    }
    // And it is what the server serves.
    let t = TestApp::new().await?;
    let served: serde_json::Value =
        serde_json::from_str(&t.browser([127, 0, 11, 1]).get("/api/openapi.json").await?.body)?;
    assert_eq!(served, doc);
    Ok(())
}
