//! docs/api.md's table of events, made from [`Kind`] and [`Subscription`].

use crate::{Kind, Subscription};

/// The Markdown table of every kind: topic, type, version, producer and
/// consumers, and the payload's fields.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| topic | type | version | from → to | data |\n|---|---|---|---|---|\n");
    for kind in Kind::ALL {
        let consumers: Vec<&str> = Subscription::ALL
            .iter()
            .filter(|s| s.kinds.contains(&kind))
            .map(|s| s.service)
            .collect();
        let (fields, remark) = kind.fields();
        let remark = if remark.is_empty() {
            String::new()
        } else {
            format!(" ({remark})")
        };
        table.push_str(&format!(
            "| `{}` | `{}` | {} | {} → {} | `{{{}}}`{remark} |\n",
            kind.topic(),
            kind.name(),
            kind.version(),
            kind.producer(),
            consumers.join(", "),
            fields.join(", "),
        ));
    }
    table
}
