//! Printing diagnostics for humans and for tools.

use std::io::Write;

use teipsum_spec::{Diagnostic, LoadError, Severity};

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
                diagnostics_text(file, diagnostics, Severity::Error);
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

/// Human-readable diagnostics on stderr, as [`teipsum_spec::render`] writes them.
pub fn diagnostics_text(file: &std::path::Path, diagnostics: &[Diagnostic], severity: Severity) {
    let text = teipsum_spec::render(file, diagnostics, severity);
    // A closed stderr is not worth a panic either.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
