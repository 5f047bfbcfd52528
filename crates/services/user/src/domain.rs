//! The parts of a profile a user edits, validated.

use serde::{Deserialize, Serialize};
use teipsum_kit::domain::{Invalid, is_invisible};

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, Invalid> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if required && length == 0 {
        return Err(Invalid(format!("{field} must not be empty")));
    }
    if length > max {
        return Err(Invalid(format!(
            "{field} must have at most {max} characters"
        )));
    }
    if trimmed.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(Invalid(format!(
            "{field} must not contain control or invisible characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number.
    #[schema(max_length = 120)]
    pub line1: String,
    /// Anything else.
    #[serde(default)]
    #[schema(max_length = 120)]
    pub line2: Option<String>,
    /// City.
    #[schema(max_length = 80)]
    pub city: String,
    /// Letters, digits, spaces and `-`.
    #[schema(max_length = 16)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(example = "DE")]
    pub country: String,
}

impl Address {
    /// The address trimmed and checked.
    pub fn validated(&self) -> Result<Address, Invalid> {
        let country = self.country.trim().to_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(Invalid(
                "shipping_address.country must be a two-letter code such as DE".to_owned(),
            ));
        }
        let postal_code = text("shipping_address.postal_code", &self.postal_code, 16, true)?;
        if !postal_code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        {
            return Err(Invalid(
                "shipping_address.postal_code may only contain letters, digits, spaces and -"
                    .to_owned(),
            ));
        }
        Ok(Address {
            line1: text("shipping_address.line1", &self.line1, 120, true)?,
            line2: match &self.line2 {
                Some(l) if !l.trim().is_empty() => {
                    Some(text("shipping_address.line2", l, 120, false)?)
                }
                _ => None,
            },
            city: text("shipping_address.city", &self.city, 80, true)?,
            postal_code,
            country,
        })
    }
}

/// What a user chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Whether to get the newsletter.
    pub newsletter: bool,
    /// Language of the storefront (`en`, `de`, `fr`, ...).
    #[schema(example = "en")]
    pub language: String,
}

impl Preferences {
    /// Checked preferences.
    pub fn validated(&self) -> Result<Preferences, Invalid> {
        let language = self.language.trim().to_lowercase();
        if !(2..=3).contains(&language.len()) || !language.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(Invalid(
                "preferences.language must be a language code such as en".to_owned(),
            ));
        }
        Ok(Preferences {
            newsletter: self.newsletter,
            language,
        })
    }
}

/// An edit of `PUT /api/users/me`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileEdit {
    /// New name.
    #[schema(max_length = 64)]
    pub display_name: String,
    /// New address, or none.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// New phone number (E.164: `+` and 7 to 15 digits), or none.
    #[serde(default)]
    #[schema(example = "+49 30 1234567")]
    pub phone: Option<String>,
    /// New preferences.
    pub preferences: Preferences,
}

/// A checked edit.
#[derive(Debug, Clone)]
pub struct ValidEdit {
    pub display_name: String,
    pub shipping_address: Option<Address>,
    pub phone: Option<String>,
    pub preferences: Preferences,
}

impl ProfileEdit {
    /// Check every field.
    pub fn validated(&self) -> Result<ValidEdit, Invalid> {
        let phone = match &self.phone {
            None => None,
            Some(p) if p.trim().is_empty() => None,
            Some(p) => {
                let compact: String = p.chars().filter(|c| *c != ' ' && *c != '-').collect();
                let digits = compact.strip_prefix('+').unwrap_or("");
                if !(7..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(Invalid(
                        "phone must be in international form, such as +49 30 1234567".to_owned(),
                    ));
                }
                Some(compact)
            }
        };
        Ok(ValidEdit {
            display_name: text("display_name", &self.display_name, 64, true)?,
            shipping_address: self
                .shipping_address
                .as_ref()
                .map(Address::validated)
                .transpose()?,
            phone,
            preferences: self.preferences.validated()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(json: serde_json::Value) -> Result<ValidEdit, String> {
        let edit: ProfileEdit = serde_json::from_value(json).map_err(|e| e.to_string())?;
        edit.validated().map_err(|e| e.to_string())
    }

    #[test]
    fn a_complete_edit_is_normalised() {
        let e = edit(serde_json::json!({
            "display_name": " Ana ",
            "shipping_address": {"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "de"},
            "phone": "+49 30 1234567",
            "preferences": {"newsletter": true, "language": "DE"}
        }))
        .unwrap();
        assert_eq!(e.display_name, "Ana");
        assert_eq!(e.shipping_address.unwrap().country, "DE");
        assert_eq!(e.phone.as_deref(), Some("+49301234567"));
        assert_eq!(e.preferences.language, "de");
    }

    #[test]
    fn bad_fields_are_named() {
        let base = || serde_json::json!({"display_name": "Ana", "preferences": {"newsletter": false, "language": "en"}});
        let mut v = base();
        v["phone"] = "12".into();
        assert!(edit(v).unwrap_err().contains("phone"));
        let mut v = base();
        v["shipping_address"] = serde_json::json!({"line1": "x", "city": "y", "postal_code": "1", "country": "Germany"});
        assert!(edit(v).unwrap_err().contains("country"));
        let mut v = base();
        v["display_name"] = "\u{202E}evil".into();
        assert!(edit(v).unwrap_err().contains("display_name"));
        let mut v = base();
        v["role"] = "admin".into();
        assert!(edit(v).unwrap_err().contains("unknown field `role`"));
    }
}
