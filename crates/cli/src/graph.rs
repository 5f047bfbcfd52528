//! Pictures of a plan: services ↔ topics ↔ databases ↔ routes.

use std::fmt::Write;

use teipsum_spec::Plan;

/// A Mermaid-safe node id.
fn id(kind: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{kind}_{clean}")
}

/// Text inside a Mermaid `"..."` label (`#quot;` is Mermaid's escape).
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
}

/// A Mermaid flowchart of the plan.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "flowchart LR");
    let _ = writeln!(
        out,
        "  edge{{{{\"nginx<br/>{}\"}}}}",
        mermaid_text(&plan.domain)
    );
    let _ = writeln!(
        out,
        "  frontend[\"storefront<br/>{}\"]",
        mermaid_text(&plan.frontend.root)
    );
    let _ = writeln!(out, "  subgraph services");
    for s in &plan.services {
        let _ = writeln!(
            out,
            "    {}[\"{}<br/>:{}\"]",
            id("svc", &s.name),
            mermaid_text(&s.name),
            s.port
        );
    }
    let _ = writeln!(out, "  end");
    let _ = writeln!(out, "  subgraph topics");
    for t in &plan.kafka.topics {
        let _ = writeln!(
            out,
            "    {}([\"{}<br/>{} partitions\"])",
            id("topic", &t.name),
            mermaid_text(&t.name),
            t.partitions
        );
    }
    let _ = writeln!(out, "  end");
    let _ = writeln!(out, "  subgraph databases");
    for d in &plan.postgres.databases {
        let _ = writeln!(
            out,
            "    {}[(\"{}\")]",
            id("db", &d.name),
            mermaid_text(&d.name)
        );
    }
    let _ = writeln!(out, "  end");
    let _ = writeln!(
        out,
        "  edge -->|\"{}\"| frontend",
        mermaid_text(&plan.frontend.route)
    );
    for r in &plan.nginx.routes {
        let _ = writeln!(
            out,
            "  edge -->|\"{}\"| {}",
            mermaid_text(&r.prefix),
            id("svc", &r.service)
        );
    }
    for s in &plan.services {
        let _ = writeln!(
            out,
            "  {} --- {}",
            id("svc", &s.name),
            id("db", &s.database)
        );
        for t in &s.produces {
            let _ = writeln!(
                out,
                "  {} -->|produces| {}",
                id("svc", &s.name),
                id("topic", t)
            );
        }
        for t in &s.consumes {
            let _ = writeln!(
                out,
                "  {} -->|consumes| {}",
                id("topic", t),
                id("svc", &s.name)
            );
        }
    }
    out
}

/// Text inside a dot `"..."` string.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Graphviz digraph of the plan.
pub fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph \"{}\" {{",
        dot_text(&format!("{} {}", plan.platform, plan.environment))
    );
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(
        out,
        "  \"edge\" [shape=hexagon, label=\"nginx\\n{}\"];",
        dot_text(&plan.domain)
    );
    let _ = writeln!(
        out,
        "  \"frontend\" [shape=folder, label=\"storefront\\n{}\"];",
        dot_text(&plan.frontend.root)
    );
    for s in &plan.services {
        let _ = writeln!(
            out,
            "  \"service:{0}\" [shape=box, label=\"{0}\\n:{1}\"];",
            dot_text(&s.name),
            s.port
        );
    }
    for t in &plan.kafka.topics {
        let _ = writeln!(
            out,
            "  \"topic:{0}\" [shape=ellipse, label=\"{0}\"];",
            dot_text(&t.name)
        );
    }
    for d in &plan.postgres.databases {
        let _ = writeln!(
            out,
            "  \"db:{0}\" [shape=cylinder, label=\"{0}\"];",
            dot_text(&d.name)
        );
    }
    let _ = writeln!(
        out,
        "  \"edge\" -> \"frontend\" [label=\"{}\"];",
        dot_text(&plan.frontend.route)
    );
    for r in &plan.nginx.routes {
        let _ = writeln!(
            out,
            "  \"edge\" -> \"service:{}\" [label=\"{}\"];",
            dot_text(&r.service),
            dot_text(&r.prefix)
        );
    }
    for s in &plan.services {
        let name = dot_text(&s.name);
        let _ = writeln!(
            out,
            "  \"service:{name}\" -> \"db:{}\" [dir=none];",
            dot_text(&s.database)
        );
        for t in &s.produces {
            let _ = writeln!(
                out,
                "  \"service:{name}\" -> \"topic:{}\" [label=\"produces\"];",
                dot_text(t)
            );
        }
        for t in &s.consumes {
            let _ = writeln!(
                out,
                "  \"topic:{}\" -> \"service:{name}\" [label=\"consumes\"];",
                dot_text(t)
            );
        }
    }
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_ids_are_alphanumeric() {
        assert_eq!(id("svc", "admin-product"), "svc_admin_product");
        assert_eq!(id("topic", "order-events"), "topic_order_events");
    }

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        assert_eq!(mermaid_text("a\"b"), "a#quot;b");
        assert_eq!(dot_text("a\"b\\"), "a\\\"b\\\\");
    }
}
