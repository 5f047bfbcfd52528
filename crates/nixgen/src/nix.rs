//! A small Nix value type and its one printer.
//!
//! Generated modules are built as [`Nix`] values and printed here, never glued
//! together with `format!`: attribute names are quoted when they must be,
//! strings are escaped by one function per string syntax, attribute sets are
//! printed in sorted order, and the layout is fixed. The same value always
//! prints to the same bytes, and the bytes always parse.

use std::collections::BTreeMap;

/// A Nix expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Nix {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (printed so that it stays a float).
    Float(f64),
    /// A string: `"..."` on one line, `''...''` when it has several lines.
    Str(String),
    /// A string with `${...}` interpolations.
    Interp(Vec<Part>),
    /// A relative path (`./postgresql.nix`).
    Path(String),
    /// A list.
    List(Vec<Nix>),
    /// An attribute set, printed in key order.
    Attrs(Attrs),
    /// A variable (`pkgs`, `config`, `lib`).
    Var(String),
    /// Attribute selection (`pkgs.postgresql_15`).
    Select(Box<Nix>, Vec<String>),
    /// Function application (`lib.mkDefault true`).
    Apply(Box<Nix>, Vec<Nix>),
    /// A module function `{ config, lib, pkgs, ... }: body`.
    Lambda(Vec<String>, Box<Nix>),
}

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text (escaped when printed).
    Lit(String),
    /// `${expr}`.
    Expr(Nix),
}

/// An attribute set: sorted bindings, each with an optional comment saying why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(BTreeMap<String, Binding>);

/// One `name = value;` binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The value.
    pub value: Nix,
    /// A comment printed above the binding.
    pub comment: Option<String>,
}

impl Attrs {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bind `name` (replacing an earlier binding).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Nix>) -> &mut Self {
        self.0.insert(
            name.into(),
            Binding {
                value: value.into(),
                comment: None,
            },
        );
        self
    }

    /// Bind `name` with a comment saying why it is there.
    pub fn set_with(
        &mut self,
        name: impl Into<String>,
        comment: impl Into<String>,
        value: impl Into<Nix>,
    ) -> &mut Self {
        self.0.insert(
            name.into(),
            Binding {
                value: value.into(),
                comment: Some(comment.into()),
            },
        );
        self
    }

    /// Bind a nested attribute path (`["services", "nginx", "enable"]`),
    /// creating intermediate sets and merging into existing ones.
    ///
    /// # Panics
    ///
    /// When an intermediate name is already bound to something that is not a
    /// set: that is a bug in the generator, not a property of the input.
    pub fn set_path(&mut self, path: &[&str], value: impl Into<Nix>) -> &mut Self {
        match path {
            [] => panic!("empty attribute path"),
            [name] => self.set(*name, value),
            [first, rest @ ..] => {
                let entry = self
                    .0
                    .entry((*first).to_owned())
                    .or_insert_with(|| Binding {
                        value: Nix::Attrs(Attrs::new()),
                        comment: None,
                    });
                match &mut entry.value {
                    Nix::Attrs(inner) => {
                        inner.set_path(rest, value);
                    }
                    other => panic!("`{first}` is already bound to {other:?}"),
                }
                self
            }
        }
    }

    /// Attach a comment to an existing binding.
    pub fn comment(&mut self, name: &str, comment: impl Into<String>) -> &mut Self {
        if let Some(binding) = self.0.get_mut(name) {
            binding.comment = Some(comment.into());
        }
        self
    }

    /// Whether the set has no bindings.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bindings, in print order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Binding)> {
        self.0.iter()
    }

    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&Nix> {
        self.0.get(name).map(|b| &b.value)
    }
}

impl From<Attrs> for Nix {
    fn from(attrs: Attrs) -> Self {
        Nix::Attrs(attrs)
    }
}
impl From<bool> for Nix {
    fn from(b: bool) -> Self {
        Nix::Bool(b)
    }
}
impl From<i64> for Nix {
    fn from(i: i64) -> Self {
        Nix::Int(i)
    }
}
impl From<u16> for Nix {
    fn from(i: u16) -> Self {
        Nix::Int(i64::from(i))
    }
}
impl From<u32> for Nix {
    fn from(i: u32) -> Self {
        Nix::Int(i64::from(i))
    }
}
impl From<&str> for Nix {
    fn from(s: &str) -> Self {
        Nix::Str(s.to_owned())
    }
}
impl From<String> for Nix {
    fn from(s: String) -> Self {
        Nix::Str(s)
    }
}
impl From<&String> for Nix {
    fn from(s: &String) -> Self {
        Nix::Str(s.clone())
    }
}
impl<T: Into<Nix>> From<Vec<T>> for Nix {
    fn from(items: Vec<T>) -> Self {
        Nix::List(items.into_iter().map(Into::into).collect())
    }
}

impl Nix {
    /// A variable.
    pub fn var(name: &str) -> Nix {
        assert!(is_identifier(name), "`{name}` is not a Nix identifier");
        Nix::Var(name.to_owned())
    }

    /// `base.a.b` from a dotted path whose first element is a variable.
    pub fn select(dotted: &str) -> Nix {
        let mut parts = dotted.split('.');
        let base = Nix::var(parts.next().expect("a variable"));
        let path: Vec<String> = parts.map(str::to_owned).collect();
        if path.is_empty() {
            base
        } else {
            Nix::Select(Box::new(base), path)
        }
    }

    /// `f arg1 arg2`.
    pub fn apply(function: Nix, args: Vec<Nix>) -> Nix {
        Nix::Apply(Box::new(function), args)
    }

    /// `"${expr}suffix"`.
    pub fn interp(parts: Vec<Part>) -> Nix {
        Nix::Interp(parts)
    }

    /// A relative path literal.
    pub fn path(relative: &str) -> Nix {
        assert!(
            relative.starts_with("./")
                && relative
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"./_-+".contains(&b)),
            "`{relative}` is not a plain relative path"
        );
        Nix::Path(relative.to_owned())
    }

    /// The module function `{ config, lib, pkgs, ... }: body`.
    pub fn module(args: &[&str], body: Nix) -> Nix {
        Nix::Lambda(
            args.iter().map(|a| (*a).to_owned()).collect(),
            Box::new(body),
        )
    }
}

const KEYWORDS: [&str; 10] = [
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or",
];

/// Whether `name` can be written bare as a Nix identifier / attribute name.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '\'')
        && !KEYWORDS.contains(&name)
}

/// An attribute name, quoted when it must be.
pub fn attr_name(name: &str) -> String {
    if is_identifier(name) {
        name.to_owned()
    } else {
        format!("\"{}\"", escape_double_quoted(name))
    }
}

/// Escape text for a `"..."` string: `\`, `"`, `${`, and control characters.
pub fn escape_double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for a `''...''` string: `''` → `'''`, `${` → `''${`.
///
/// `\r` and `\t` cannot be written in an indented string (only as `''\r`,
/// `''\t`), and would be mistaken for indentation, so the printer never uses
/// this syntax for text that contains them.
pub fn escape_indented(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match chars[i] {
            '\'' if next == Some('\'') => {
                out.push_str("'''");
                i += 1;
            }
            // A quote right before an escaped `${` would merge with the
            // escape into `'''`: write that dollar as an interpolation.
            '\'' if next == Some('$') && chars.get(i + 2) == Some(&'{') => {
                out.push_str("'${\"$\"}");
                i += 1;
            }
            '$' if next == Some('{') => out.push_str("''$"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Whether a string reads better, and stays exact, as an indented string.
///
/// Nix strips the smallest indentation of an indented string's lines, so
/// the printer uses one only when that strips exactly the indentation it
/// adds: some line starts without a space, no line is only spaces, and there
/// are no tabs or carriage returns (Nix would not treat them as text).
fn use_indented(text: &str) -> bool {
    text.contains('\n')
        && !text.contains('\r')
        && !text.contains('\t')
        && text.split('\n').all(|l| l.is_empty() || !l.trim_start_matches(' ').is_empty())
        && text.split('\n').any(|l| !l.is_empty() && !l.starts_with(' '))
        // A trailing `'` would run into the closing `''`.
        && !text.ends_with('\'')
}

/// Print a top-level expression with the `@generated` header.
pub fn render_file(header: &str, value: &Nix) -> String {
    let mut out = String::new();
    for line in header.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    print(&mut out, value, 0);
    out.push('\n');
    out
}

/// Print `value` as Nix text.
pub fn to_string(value: &Nix) -> String {
    let mut out = String::new();
    print(&mut out, value, 0);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Whether a value prints on one line.
fn is_simple(value: &Nix) -> bool {
    match value {
        Nix::List(items) => items.is_empty() || (items.len() <= 4 && items.iter().all(is_scalar)),
        Nix::Attrs(attrs) => attrs.is_empty(),
        Nix::Str(s) => !use_indented(s),
        Nix::Lambda(..) => false,
        Nix::Apply(_, args) => args.iter().all(is_simple),
        _ => true,
    }
}

fn is_scalar(value: &Nix) -> bool {
    match value {
        Nix::Str(s) => !s.contains('\n') && s.len() <= 40,
        Nix::Null | Nix::Bool(_) | Nix::Int(_) | Nix::Float(_) | Nix::Path(_) => true,
        Nix::Var(_) | Nix::Select(..) => true,
        _ => false,
    }
}

/// Collapse `a = { b = x; }` into `a.b = x` while the inner set has one uncommented binding.
fn collapsed<'a>(name: &str, binding: &'a Binding) -> (String, &'a Binding) {
    let mut key = attr_name(name);
    let mut current = binding;
    while let Nix::Attrs(inner) = &current.value {
        let mut iter = inner.iter();
        match (iter.next(), iter.next()) {
            (Some((inner_name, inner_binding)), None)
                if inner_binding.comment.is_none() && current.comment.is_none() =>
            {
                key.push('.');
                key.push_str(&attr_name(inner_name));
                current = inner_binding;
            }
            _ => break,
        }
    }
    (key, current)
}

fn print(out: &mut String, value: &Nix, level: usize) {
    match value {
        Nix::Null => out.push_str("null"),
        Nix::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Nix::Int(i) => {
            if *i < 0 {
                // `-1` alone is fine, but inside a list or an application it
                // would be subtraction; always parenthesise.
                out.push_str(&format!("({i})"));
            } else {
                out.push_str(&i.to_string());
            }
        }
        Nix::Float(f) => {
            assert!(f.is_finite(), "Nix has no NaN or infinity");
            let text = format!("{f:?}");
            if *f < 0.0 {
                out.push_str(&format!("({text})"));
            } else {
                out.push_str(&text);
            }
        }
        Nix::Str(s) => print_string(out, s, level),
        Nix::Interp(parts) => {
            out.push('"');
            for part in parts {
                match part {
                    Part::Lit(text) => out.push_str(&escape_double_quoted(text)),
                    Part::Expr(expr) => {
                        out.push_str("${");
                        print(out, expr, level);
                        out.push('}');
                    }
                }
            }
            out.push('"');
        }
        Nix::Path(p) => out.push_str(p),
        Nix::Var(name) => out.push_str(name),
        Nix::Select(base, path) => {
            print(out, base, level);
            for name in path {
                out.push('.');
                out.push_str(&attr_name(name));
            }
        }
        Nix::Apply(function, args) => {
            print(out, function, level);
            for arg in args {
                out.push(' ');
                let needs_parens = matches!(arg, Nix::Apply(..) | Nix::Lambda(..));
                if needs_parens {
                    out.push('(');
                }
                print(out, arg, level);
                if needs_parens {
                    out.push(')');
                }
            }
        }
        Nix::List(items) => {
            if items.is_empty() {
                out.push_str("[ ]");
            } else if is_simple(value) {
                out.push('[');
                for item in items {
                    out.push(' ');
                    print_list_item(out, item, level);
                }
                out.push_str(" ]");
            } else {
                out.push_str("[\n");
                for item in items {
                    indent(out, level + 1);
                    print_list_item(out, item, level + 1);
                    out.push('\n');
                }
                indent(out, level);
                out.push(']');
            }
        }
        Nix::Attrs(attrs) => {
            if attrs.is_empty() {
                out.push_str("{ }");
                return;
            }
            out.push_str("{\n");
            let mut first = true;
            for (name, binding) in attrs.iter() {
                let (key, binding) = collapsed(name, binding);
                if let Some(comment) = &binding.comment {
                    // A blank line before a commented binding groups it visually.
                    if !first {
                        out.push('\n');
                    }
                    for line in comment.lines() {
                        indent(out, level + 1);
                        out.push_str("# ");
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                first = false;
                indent(out, level + 1);
                out.push_str(&key);
                out.push_str(" = ");
                print(out, &binding.value, level + 1);
                out.push_str(";\n");
            }
            indent(out, level);
            out.push('}');
        }
        Nix::Lambda(args, body) => {
            out.push_str("{ ");
            for arg in args {
                out.push_str(arg);
                out.push_str(", ");
            }
            out.push_str("... }:\n");
            indent(out, level);
            print(out, body, level);
        }
    }
}

fn print_list_item(out: &mut String, item: &Nix, level: usize) {
    // Applications and functions inside a list need parentheses.
    if matches!(item, Nix::Apply(..) | Nix::Lambda(..)) {
        out.push('(');
        print(out, item, level);
        out.push(')');
    } else {
        print(out, item, level);
    }
}

fn print_string(out: &mut String, s: &str, level: usize) {
    if !use_indented(s) {
        out.push('"');
        out.push_str(&escape_double_quoted(s));
        out.push('"');
        return;
    }
    let (text, trailing_newline) = match s.strip_suffix('\n') {
        Some(text) => (text, true),
        None => (s, false),
    };
    out.push_str("''\n");
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.is_empty() {
            indent(out, level + 1);
            out.push_str(&escape_indented(line));
        }
        if i + 1 < lines.len() || trailing_newline {
            out.push('\n');
        }
    }
    if trailing_newline {
        indent(out, level);
    }
    out.push_str("''");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_quoted_strings_escape_what_nix_interprets() {
        assert_eq!(escape_double_quoted(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_double_quoted("${x}"), "\\${x}");
        assert_eq!(escape_double_quoted("$x {y}"), "$x {y}");
        assert_eq!(escape_double_quoted("a\nb\tc\r"), "a\\nb\\tc\\r");
    }

    #[test]
    fn indented_strings_escape_quotes_and_interpolation() {
        assert_eq!(escape_indented("a''b"), "a'''b");
        assert_eq!(escape_indented("${x}"), "''${x}");
        assert_eq!(escape_indented("it's"), "it's");
        assert_eq!(escape_indented("'${"), "'${\"$\"}{");
    }

    #[test]
    fn attribute_names_are_quoted_only_when_needed() {
        assert_eq!(attr_name("teipsum-order"), "teipsum-order");
        assert_eq!(attr_name("log.dirs"), "\"log.dirs\"");
        assert_eq!(attr_name("/api/orders/"), "\"/api/orders/\"");
        assert_eq!(attr_name("in"), "\"in\"");
        assert_eq!(attr_name("1x"), "\"1x\"");
        assert_eq!(attr_name("a${b}"), "\"a\\${b}\"");
    }

    #[test]
    fn sets_print_sorted_with_single_paths_collapsed() {
        let mut attrs = Attrs::new();
        attrs.set_path(&["services", "nginx", "enable"], true);
        attrs.set("b", 1i64);
        attrs.set_with("a", "why a", "x");
        assert_eq!(
            to_string(&Nix::Attrs(attrs)),
            "{\n  # why a\n  a = \"x\";\n  b = 1;\n  services.nginx.enable = true;\n}"
        );
    }

    #[test]
    fn negative_numbers_are_parenthesised() {
        assert_eq!(
            to_string(&Nix::from(vec![Nix::Int(-1), Nix::Int(2)])),
            "[ (-1) 2 ]"
        );
        assert_eq!(to_string(&Nix::Float(0.9)), "0.9");
        assert_eq!(to_string(&Nix::Float(1.0)), "1.0");
    }

    #[test]
    fn multi_line_strings_become_indented_strings() {
        let mut attrs = Attrs::new();
        attrs.set("text", "line one\n  two ${x}\n");
        assert_eq!(
            to_string(&Nix::Attrs(attrs)),
            "{\n  text = ''\n    line one\n      two ''${x}\n  '';\n}"
        );
    }

    #[test]
    fn applications_and_selections() {
        let value = Nix::apply(
            Nix::select("lib.mkDefault"),
            vec![Nix::select("pkgs.postgresql_15")],
        );
        assert_eq!(to_string(&value), "lib.mkDefault pkgs.postgresql_15");
        let exec = Nix::interp(vec![
            Part::Expr(Nix::select("config.teipsum.package")),
            Part::Lit("/bin/teipsum-order".into()),
        ]);
        assert_eq!(
            to_string(&exec),
            "\"${config.teipsum.package}/bin/teipsum-order\""
        );
    }
}
