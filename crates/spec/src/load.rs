//! Evaluating `config.ncl` with Nickel and turning the result into [`RawPlatform`].
//!
//! The spec is evaluated with the schema the compiler embeds (the same
//! `platform.ncl` that `config.ncl` imports), applied on top of whatever the
//! file applies itself. Nickel stops at the first broken contract and reports
//! it with source spans but without the full field path; so when evaluation
//! fails, `locate_errors` walks the spec field by field, evaluating each one
//! on its own, to find *every* failing field and name its path.

use std::path::{Path, PathBuf};

use codespan_reporting::diagnostic::LabelStyle;
use nickel_lang_core::{
    error::{
        Error as NickelError, EvalErrorKind, ImportErrorKind, IntoDiagnostics, TypecheckErrorKind,
        report::report_as_str,
    },
    eval::cache::CacheImpl,
    identifier::LocIdent,
    program::{FieldPath as NickelPath, Program, ProgramBuilder},
    serialize::{ExportFormat, to_string as export},
    term::RecordOpKind,
};

use crate::{
    diagnostic::{Diagnostic, FieldPath, Location, Segment, Violation},
    raw::RawPlatform,
};

/// The schema every spec is checked against; `config.ncl` imports the same file.
pub const SCHEMA: &str = include_str!("../platform.ncl");

/// Name under which the embedded schema appears in Nickel's reports.
const SCHEMA_NAME: &str = "platform.ncl (embedded in teipsum)";

/// Upper bound on evaluations spent locating errors, so that a pathological
/// spec cannot keep the compiler busy.
const LOCATE_BUDGET: usize = 2_000;

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The spec file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The spec is invalid.
    #[error("{} problem(s) in the spec", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// Evaluate the spec at `path` and deserialize it.
pub fn load(path: &Path) -> Result<RawPlatform, LoadError> {
    let json = evaluate(path)?;
    from_json(&json).map_err(|d| LoadError::Invalid(vec![*d]))
}

/// Evaluate the spec at `path` to JSON, with the embedded schema applied.
pub fn evaluate(path: &Path) -> Result<String, LoadError> {
    let absolute = std::fs::canonicalize(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Read it once here so that an unreadable file is an I/O error, not a
    // Nickel import error.
    std::fs::read_to_string(&absolute).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;

    let mut program = program_for(&absolute);
    match program.eval_full_for_export() {
        Ok(value) => export(ExportFormat::Json, &value).map_err(|e| {
            LoadError::Invalid(vec![Diagnostic::new(
                FieldPath::root(),
                Violation::Nickel {
                    kind: "nickel",
                    message: format!("cannot export the spec as JSON: {e:?}"),
                    notes: vec![],
                },
            )])
        }),
        Err(first) => {
            let mut found = Vec::new();
            // Only evaluation errors depend on which field is forced; a
            // syntax or import error is about the file as a whole (and the
            // program cannot be evaluated again after one).
            if matches!(first, NickelError::EvalError(_)) {
                let mut budget = LOCATE_BUDGET;
                locate_errors(&mut program, &FieldPath::root(), &mut found, &mut budget);
            }
            if found.is_empty() {
                // Whatever failed did not fail again field by field: report it
                // as it came.
                found.push(diagnostic(&mut program, FieldPath::root(), first, None));
            }
            Err(LoadError::Invalid(found))
        }
    }
}

/// Deserialize the exported JSON, naming the field serde trips on.
pub fn from_json(json: &str) -> Result<RawPlatform, Box<Diagnostic>> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut path = FieldPath::root();
        for segment in e.path().iter() {
            use serde_path_to_error::Segment as S;
            path = match segment {
                S::Map { key } | S::Enum { variant: key } => path.field(key.clone()),
                S::Seq { index } => path.index(*index),
                S::Unknown => path,
            };
        }
        let message = e.inner().to_string();
        // serde_json appends " at line 1 column N" of the exported JSON,
        // which means nothing to the author of config.ncl.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        Box::new(Diagnostic::new(path, Violation::Shape { message }))
    })
}

/// A Nickel program evaluating the spec file under the embedded schema.
fn program_for(absolute: &Path) -> Program<CacheImpl> {
    // The embedded schema comes first so that Nickel's line numbers in it
    // match platform.ncl; the pipe applies its `Platform` contract to the
    // imported spec.
    let source = format!(
        "{SCHEMA}\n|> (fun schema => (import \"{}\") | schema.Platform)\n",
        nickel_string_escape(&absolute.to_string_lossy())
    );
    ProgramBuilder::new()
        .add_source_string(source, SCHEMA_NAME)
        .build()
        .expect("an in-memory source always builds")
}

/// Escape text for a Nickel double-quoted string.
fn nickel_string_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("%{", "\\%{")
}

/// Walk the spec, evaluating each field on its own, and record every field
/// whose evaluation fails (at the deepest level where it still fails).
fn locate_errors(
    program: &mut Program<CacheImpl>,
    path: &FieldPath,
    found: &mut Vec<Diagnostic>,
    budget: &mut usize,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    program.field = nickel_path(path);
    // Weak head normal form first: record contracts (extra or missing
    // fields) fail here, before any child is looked at.
    let value = match program.eval() {
        Ok(value) => value,
        Err(error) => {
            found.push(diagnostic(program, path.clone(), error, None));
            return;
        }
    };
    if let Some(record) = value.as_record() {
        let names: Vec<String> = record
            .field_names(RecordOpKind::IgnoreEmptyOpt)
            .into_iter()
            .map(|id| id.label().to_owned())
            .collect();
        let before = found.len();
        for name in names {
            locate_errors(program, &path.field(name), found, budget);
        }
        if found.len() > before {
            return;
        }
    }
    program.field = nickel_path(path);
    if let Err(error) = program.eval_full_for_export() {
        let element_spans = array_element_spans(program, &value);
        found.push(diagnostic(program, path.clone(), error, element_spans));
    }
}

/// The byte ranges of an array's elements, to tell which element a contract blamed.
fn array_element_spans(
    program: &Program<CacheImpl>,
    value: &nickel_lang_core::eval::value::NickelValue,
) -> Option<Vec<(u32, u32)>> {
    let array = value.as_array()?.into_opt()?;
    let table = program.pos_table();
    Some(
        array
            .array
            .iter()
            .map(|element| match table.get(element.pos_idx()).into_opt() {
                Some(span) => (span.start.0, span.end.0),
                None => (u32::MAX, u32::MAX),
            })
            .collect(),
    )
}

fn nickel_path(path: &FieldPath) -> NickelPath {
    NickelPath(
        path.segments()
            .iter()
            .filter_map(|s| match s {
                Segment::Field(name) => Some(LocIdent::new(name)),
                Segment::Index(_) => None,
            })
            .collect(),
    )
}

/// Turn a Nickel error at `path` into a diagnostic.
fn diagnostic(
    program: &mut Program<CacheImpl>,
    mut path: FieldPath,
    error: NickelError,
    element_spans: Option<Vec<(u32, u32)>>,
) -> Diagnostic {
    let kind = match &error {
        NickelError::ParseErrors(_) => "syntax",
        NickelError::ImportError(import) => match **import {
            ImportErrorKind::ParseErrors(..) => "syntax",
            _ => "import",
        },
        // Nickel parses imports while typechecking the importing file.
        NickelError::TypecheckError(data) => match data.borrow_error() {
            TypecheckErrorKind::ImportError(ImportErrorKind::ParseErrors(..)) => "syntax",
            TypecheckErrorKind::ImportError(_) => "import",
            _ => "nickel",
        },
        NickelError::EvalError(data) => match data.error {
            EvalErrorKind::BlameError { .. } => "contract",
            EvalErrorKind::MissingFieldDef { .. } => "missing-field",
            EvalErrorKind::ParseError(_) => "syntax",
            _ => "nickel",
        },
        _ => "nickel",
    };
    // The contract's own words are the most precise message.
    let mut contract_message = None;
    if let NickelError::EvalError(data) = &error {
        if let EvalErrorKind::BlameError { label, .. } = &data.error {
            contract_message = label
                .diagnostics
                .iter()
                .rev()
                .find_map(|d| d.message.clone());
            if let (Some(spans), Some(blamed)) = (
                &element_spans,
                data.ctxt.pos_table.get(label.arg_pos).into_opt(),
            ) && let Some(index) = spans
                .iter()
                .position(|&(start, end)| start <= blamed.start.0 && blamed.end.0 <= end)
            {
                path = path.index(index);
            }
        }
        if let EvalErrorKind::MissingFieldDef { id, .. } = &data.error {
            let name = id.label().to_owned();
            if !matches!(path.segments().last(), Some(Segment::Field(last)) if *last == name) {
                path = path.field(name);
            }
        }
    }

    let mut files = program.files();
    let report = report_as_str(&mut files, error.clone(), colorchoice::ColorChoice::Never);
    let diagnostics = error.into_diagnostics(&mut files);
    let first = diagnostics.first();
    let nickel_message = first.map(|d| d.message.clone()).unwrap_or_default();
    let notes: Vec<String> = first.map(|d| d.notes.clone()).unwrap_or_default();
    // Point at the spec, not at the schema, whenever Nickel offers both.
    // Values Nickel built during evaluation have no file worth showing.
    let in_spec = |id| {
        files.source(id) != SCHEMA
            && files.name(id) != SCHEMA_NAME
            && !files.name(id).to_string_lossy().starts_with('<')
    };
    let location = first.and_then(|d| {
        let label = d
            .labels
            .iter()
            .find(|l| l.style == LabelStyle::Primary && in_spec(l.file_id))
            .or_else(|| d.labels.iter().find(|l| in_spec(l.file_id)))
            .or_else(|| {
                d.labels
                    .iter()
                    .find(|l| !files.name(l.file_id).to_string_lossy().starts_with('<'))
            })?;
        // An error at the end of the file points one past its last byte.
        let last = files.source(label.file_id).len().saturating_sub(1);
        let start = label.range.start.min(last) as u32;
        let position = files.location(label.file_id, start).ok()?;
        Some(Location {
            file: files.name(label.file_id).to_string_lossy().into_owned(),
            line: position.line.to_usize() as u32 + 1,
            column: position.column.to_usize() as u32 + 1,
        })
    });

    let mut message = contract_message.unwrap_or(nickel_message);
    let mut notes = notes;
    let mut report = Some(report);
    let mut location = location;
    // A misspelt field: point at the field itself and say what it could be.
    if let Some(extra) = single_extra_field(&message).map(str::to_owned) {
        if let Some(allowed) = crate::fields::allowed_fields(&path) {
            notes = match crate::fields::closest(&extra, allowed) {
                Some(near) => vec![format!("did you mean `{near}`?")],
                None => vec![],
            };
            notes.push(format!("fields allowed here: {}", allowed.join(", ")));
        }
        message = format!("unknown field `{extra}`");
        // Nickel's report shows the schema's record contract and the record
        // as evaluated (closures and all), and suggests relaxing the
        // contract: nothing there helps the author of the spec.
        report = None;
        if location
            .as_ref()
            .is_some_and(|l| l.file == SCHEMA_NAME || l.file.ends_with("/platform.ncl"))
        {
            location = None;
        }
        path = path.field(extra);
    }
    Diagnostic {
        path,
        violation: Violation::Nickel {
            kind,
            message,
            notes,
        },
        location,
        report,
    }
}

/// `extra field `x`` → `x`.
fn single_extra_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("extra field `")?;
    let name = rest.strip_suffix('`')?;
    (!name.contains('`')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nickel_strings_escape_quotes_backslashes_and_interpolation() {
        assert_eq!(
            nickel_string_escape(r#"/a "b" \c %{d}"#),
            r#"/a \"b\" \\c \%{d}"#
        );
    }

    #[test]
    fn a_single_extra_field_is_recognised() {
        assert_eq!(single_extra_field("extra field `prot`"), Some("prot"));
        assert_eq!(single_extra_field("extra fields `a`, `b`"), None);
        assert_eq!(single_extra_field("missing field"), None);
    }
}
