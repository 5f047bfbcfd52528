//! Printing diagnostics for humans and for tools.

use std::io::Write;

use teipsum_spec::{Diagnostic, LoadError};

/// Print why the spec could not be loaded, on stderr, and return the exit code.
pub fn load_error(file: &std::path::Path, error: &LoadError, json: bool) -> u8 {
    match error {
        LoadError::Io { .. } => {
            eprintln!("error: {error}");
            crate::EXIT_FAILED
        }
        LoadError::Invalid(diagnostics) => {
            if json {
                diagnostics_json(diagnostics);
            } else {
                diagnostics_text(file, diagnostics, "error");
            }
            crate::EXIT_INVALID
        }
    }
}

/// One JSON object per line, on stdout.
pub fn diagnostics_json(diagnostics: &[Diagnostic]) {
    let mut out = std::io::stdout().lock();
    for d in diagnostics {
        // A closed stdout (`| head`) is not worth a panic.
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(d).expect("diagnostics serialize")
        );
    }
}

/// Human-readable diagnostics on stderr.
pub fn diagnostics_text(file: &std::path::Path, diagnostics: &[Diagnostic], severity: &str) {
    let mut err = std::io::stderr().lock();
    for d in diagnostics {
        let _ = writeln!(err, "{severity}[{}]: {d}", d.violation.code());
        if let Some(report) = &d.report {
            // Nickel's report shows the source lines; indent it under ours.
            for line in report.trim_end().lines() {
                let _ = writeln!(err, "  | {line}");
            }
        }
        let _ = writeln!(err);
    }
    if severity == "error" {
        let _ = writeln!(
            err,
            "{}: {} problem{} found; nothing was written",
            file.display(),
            diagnostics.len(),
            if diagnostics.len() == 1 { "" } else { "s" }
        );
    }
}
