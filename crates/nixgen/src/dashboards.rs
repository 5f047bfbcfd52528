//! Plan → Grafana dashboard files (`dashboards/<uid>.json`), provisioned
//! read-only by `monitoring.nix`. The panels and their queries are the
//! Plan's ([`teipsum_spec::plan::Dashboard`]); this only lays them out: two
//! panels a row, a logs panel the whole width.

use serde_json::{Value, json};
use teipsum_spec::plan::{Dashboard, PanelKind};

/// Grafana's dashboard schema version the files are written in.
const SCHEMA_VERSION: u32 = 39;

/// The dashboard as Grafana reads it; `marker` heads it (`@generated`),
/// which Grafana keeps and ignores.
pub fn render(dashboard: &Dashboard, marker: &str) -> String {
    let mut panels = Vec::new();
    let (mut x, mut y) = (0u32, 0u32);
    for (n, panel) in dashboard.panels.iter().enumerate() {
        let (width, height) = match panel.kind {
            PanelKind::TimeSeries => (12, 8),
            PanelKind::Logs => (24, 10),
        };
        if x + width > 24 {
            x = 0;
            y += 8;
        }
        let datasource = json!({
            "type": if panel.kind == PanelKind::Logs { "loki" } else { "prometheus" },
            "uid": panel.datasource,
        });
        let targets: Vec<Value> = panel
            .queries
            .iter()
            .zip('A'..='Z')
            .map(|(query, ref_id)| {
                json!({
                    "datasource": datasource,
                    "expr": query.expr,
                    "legendFormat": query.legend,
                    "refId": ref_id.to_string(),
                })
            })
            .collect();
        let mut value = json!({
            "id": n + 1,
            "title": panel.title,
            "datasource": datasource,
            "gridPos": { "x": x, "y": y, "w": width, "h": height },
            "targets": targets,
        });
        match panel.kind {
            PanelKind::TimeSeries => {
                value["type"] = json!("timeseries");
                value["fieldConfig"] =
                    json!({ "defaults": { "unit": panel.unit }, "overrides": [] });
                value["options"] =
                    json!({ "legend": { "displayMode": "list", "placement": "bottom" } });
            }
            PanelKind::Logs => {
                value["type"] = json!("logs");
                value["options"] = json!({
                    "showTime": true,
                    "sortOrder": "Descending",
                    "enableLogDetails": true,
                    "wrapLogMessage": true,
                });
            }
        }
        panels.push(value);
        x += width;
        if x >= 24 {
            x = 0;
            y += height;
        }
    }
    let value = json!({
        "@generated": marker,
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["teipsum"],
        "editable": false,
        "schemaVersion": SCHEMA_VERSION,
        "time": { "from": "now-6h", "to": "now" },
        "refresh": "1m",
        "timezone": "browser",
        "panels": panels,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("dashboards serialize");
    text.push('\n');
    text
}
