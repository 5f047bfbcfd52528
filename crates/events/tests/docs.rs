//! docs/api.md's table of events is generated from the contracts: this test
//! fails when the committed table differs, and `TEIPSUM_REFRESH=1 cargo test
//! -p teipsum-events` writes it anew.

use std::path::Path;

const BEGIN: &str = "<!-- events table: generated from crates/events (TEIPSUM_REFRESH=1 cargo test -p teipsum-events) -->\n";
const END: &str = "<!-- end of the events table -->";

#[test]
fn the_api_docs_show_the_events_of_the_contracts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    let docs = std::fs::read_to_string(&path).expect("docs/api.md");
    let start = docs
        .find(BEGIN)
        .expect("docs/api.md marks the events table")
        + BEGIN.len();
    let end = start
        + docs[start..]
            .find(END)
            .expect("docs/api.md ends the events table");
    let table = teipsum_events::markdown_table();
    if docs[start..end] == table {
        return;
    }
    if std::env::var_os("TEIPSUM_REFRESH").is_some() {
        let refreshed = format!("{}{table}{}", &docs[..start], &docs[end..]);
        std::fs::write(&path, refreshed).expect("docs/api.md is writable");
        return;
    }
    panic!(
        "docs/api.md's events table is not the one teipsum-events makes; \
         run `TEIPSUM_REFRESH=1 cargo test -p teipsum-events` and commit the result.\n\
         expected:\n{table}\nfound:\n{}",
        &docs[start..end]
    );
}
