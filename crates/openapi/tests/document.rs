//! docs/openapi.json is the document the code makes: this test fails when
//! the committed file differs, and `TEIPSUM_REFRESH=1 cargo test -p
//! teipsum-openapi` writes it anew.

use std::path::Path;

#[test]
fn docs_openapi_json_is_the_document_the_code_makes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let made = teipsum_openapi::document_text();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == made {
        return;
    }
    if std::env::var_os("TEIPSUM_REFRESH").is_some() {
        std::fs::write(&path, &made).expect("docs/openapi.json is writable");
        return;
    }
    let line = committed
        .lines()
        .zip(made.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(made.lines().count()));
    panic!(
        "docs/openapi.json is not the document the services' code makes (first difference at line {}); \
         run `TEIPSUM_REFRESH=1 cargo test -p teipsum-openapi` and commit the result",
        line + 1
    );
}

#[test]
fn making_the_document_twice_gives_the_same_text() {
    assert_eq!(
        teipsum_openapi::document_text(),
        teipsum_openapi::document_text()
    );
}
