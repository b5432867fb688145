//! Value types for user input ("parse, don't validate"): codici fiscali, partite IVA, IPA codes, emails,
//! IBANs and bounded text. Each is normalised and checked once at the boundary, so code holding one
//! can trust it; a refusal is an `Invalid` with a stable code the web layer localises.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Why a value was refused; `code()` is a stable kebab-case key the web layer turns into a localised message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("required")]
    Empty,
    #[error("too long")]
    TooLong { max: usize },
    #[error("too short")]
    TooShort { min: usize },
    #[error("bad format")]
    Format,
    #[error("wrong check character")]
    CheckDigit,
}

impl Invalid {
    pub fn code(&self) -> &'static str {
        match self {
            Invalid::Empty => "required",
            Invalid::TooLong { .. } => "too-long",
            Invalid::TooShort { .. } => "too-short",
            Invalid::Format => "format",
            Invalid::CheckDigit => "check-digit",
        }
    }
}

/// Blank, too short and too long come before format, so the user hears the most basic complaint first.
fn check_length(s: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let n = s.chars().count();
    if n == 0 {
        Err(Invalid::Empty)
    } else if n < min {
        Err(Invalid::TooShort { min })
    } else if n > max {
        Err(Invalid::TooLong { max })
    } else {
        Ok(())
    }
}

macro_rules! string_value {
    ($($name:ident),* $(,)?) => {$(
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

macro_rules! from_str_via_parse {
    ($($name:ident),* $(,)?) => {$(
        impl FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                Self::parse(s)
            }
        }
    )*};
}

string_value!(PersonTaxCode, CompanyTaxCode, PartitaIva, IpaCode, Email, Iban, Text);
from_str_via_parse!(PersonTaxCode, CompanyTaxCode, PartitaIva, TaxCode, IpaCode, Email, Iban);

// ---------------------------------------------------------------------------------------------------------------
// Codice fiscale of a person

/// The codice fiscale of a natural person, uppercase, possibly omocodic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersonTaxCode(String);

/// The positions that hold digits in a regular code; in an omocodic one the Agenzia delle Entrate replaces
/// some of them with letters to tell apart people whose data would otherwise give the same code.
const CF_DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
const CF_OMOCODIA_LETTERS: &[u8; 10] = b"LMNPQRSTUV";
const CF_MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// Odd-position values, indexed by the character's ordinal (digits 0–9 and letters A–J share an ordinal, and
/// the official table gives them the same value, so one table of 26 covers both).
const CF_ODD_VALUES: [u32; 26] =
    [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

impl PersonTaxCode {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        // ASCII-only uppercasing: a non-ASCII letter must stay as it is and fail below, not turn into
        // something that looks valid.
        let code = input.trim().to_ascii_uppercase();
        check_length(&code, 16, 16)?;
        let b = code.as_bytes();
        if !b.iter().all(u8::is_ascii_alphanumeric) {
            return Err(Invalid::Format);
        }
        let letter_at = |i: usize| b[i].is_ascii_uppercase();
        let digit_at = |i: usize| omocodia_digit(b[i]);

        let letters_ok = (0..6).chain([8, 11, 15]).all(letter_at);
        let digits: Option<Vec<u32>> = CF_DIGIT_POSITIONS.iter().map(|&i| digit_at(i)).collect();
        let Some(digits) = digits.filter(|_| letters_ok) else {
            return Err(Invalid::Format);
        };
        if !CF_MONTHS.contains(&b[8]) {
            return Err(Invalid::Format);
        }
        // Only the range is checked, not the month's length: codes are assigned by the Agenzia, and refusing
        // a real one costs more than admitting an odd date that still has to match the check letter.
        let day = digits[2] * 10 + digits[3];
        if !matches!(day, 1..=31 | 41..=71) {
            return Err(Invalid::Format);
        }
        // The check letter covers the code as written, omocodia letters included.
        if cf_check_letter(&b[..15]) != b[15] {
            return Err(Invalid::CheckDigit);
        }
        Ok(Self(code))
    }
}

/// The digit a character stands for in a digit position: itself, or its omocodia letter.
fn omocodia_digit(c: u8) -> Option<u32> {
    if c.is_ascii_digit() {
        Some(u32::from(c - b'0'))
    } else {
        CF_OMOCODIA_LETTERS.iter().zip(0..).find(|&(&l, _)| l == c).map(|(_, d)| d)
    }
}

/// Expects 15 uppercase ASCII alphanumerics.
fn cf_check_letter(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let ordinal = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') };
            // Positions are counted from 1 in the specification, so index 0 is an odd position.
            if i % 2 == 0 { CF_ODD_VALUES[ordinal as usize] } else { ordinal }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

// ---------------------------------------------------------------------------------------------------------------
// Codice fiscale of a company, partita IVA

/// The codice fiscale of a legal person or entity: 11 digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompanyTaxCode(String);

/// A partita IVA (Italian VAT number), stored as its 11 digits without the "IT" prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitaIva(String);

impl CompanyTaxCode {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let code = input.trim();
        check_eleven_digits(code)?;
        Ok(Self(code.to_owned()))
    }
}

impl PartitaIva {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(Invalid::Empty);
        }
        // People paste the VIES form ("IT01234567897", sometimes "it 0123…"); the register holds the digits.
        let code = match trimmed.get(..2) {
            Some(p) if p.eq_ignore_ascii_case("IT") => trimmed[2..].trim_start(),
            _ => trimmed,
        };
        if code.is_empty() {
            return Err(Invalid::TooShort { min: 11 });
        }
        check_eleven_digits(code)?;
        Ok(Self(code.to_owned()))
    }
}

fn check_eleven_digits(code: &str) -> Result<(), Invalid> {
    check_length(code, 11, 11)?;
    let b = code.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Format);
    }
    // All zeros passes the checksum but is the placeholder people type to get past a form.
    if b.iter().all(|&c| c == b'0') {
        return Err(Invalid::Format);
    }
    if eleven_digit_check(&b[..10]) != b[10] - b'0' {
        return Err(Invalid::CheckDigit);
    }
    Ok(())
}

/// Expects 10 ASCII digits.
fn eleven_digit_check(first10: &[u8]) -> u8 {
    let sum: u32 = first10
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            // Index 0 is position 1 (odd) in the specification; even positions are doubled.
            if i % 2 == 0 {
                d
            } else if 2 * d > 9 {
                2 * d - 9
            } else {
                2 * d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

// ---------------------------------------------------------------------------------------------------------------
// Either tax code

/// A codice fiscale of either kind, as a form that accepts both persons and entities receives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaxCode {
    Person(PersonTaxCode),
    Company(CompanyTaxCode),
}

impl TaxCode {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        match trimmed.chars().count() {
            0 => Err(Invalid::Empty),
            16 => PersonTaxCode::parse(trimmed).map(TaxCode::Person),
            11 => CompanyTaxCode::parse(trimmed).map(TaxCode::Company),
            _ => Err(Invalid::Format),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TaxCode::Person(c) => c.as_str(),
            TaxCode::Company(c) => c.as_str(),
        }
    }
}

impl fmt::Display for TaxCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaxCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl AsRef<str> for TaxCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// IPA code

/// The code of an administration in the IPA index (indicepa.gov.it), e.g. `r_lombar`, `c_f205`; lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpaCode(String);

impl IpaCode {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let code = input.trim().to_ascii_lowercase();
        check_length(&code, 2, 32)?;
        let b = code.as_bytes();
        let ok =
            b[0].is_ascii_lowercase() && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !ok {
            return Err(Invalid::Format);
        }
        Ok(Self(code))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Email

/// An email address (also a PEC address), lowercase. Deliberately simple: it catches typos, and delivery is
/// what proves an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// RFC 5321: 256 for the path, less the angle brackets.
    pub const MAX_LEN: usize = 254;
    const MAX_LOCAL_LEN: usize = 64;
    const MAX_LABEL_LEN: usize = 63;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let email = input.trim().to_lowercase();
        check_length(&email, 3, Self::MAX_LEN)?;
        let mut parts = email.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Invalid::Format);
        };
        let local_ok = !local.is_empty()
            && local.len() <= Self::MAX_LOCAL_LEN
            && !local.chars().any(|c| c.is_whitespace() || c.is_control());
        let mut labels = domain.split('.');
        let domain_ok = domain.contains('.') && labels.all(Self::label_ok);
        if !local_ok || !domain_ok {
            return Err(Invalid::Format);
        }
        Ok(Self(email))
    }

    fn label_ok(label: &str) -> bool {
        !label.is_empty()
            && label.len() <= Self::MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// IBAN

/// An IBAN in electronic form: uppercase, no spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Iban(String);

impl Iban {
    const IT_LEN: usize = 27;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        // The paper form groups by four; people paste either.
        let iban: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        if iban.is_empty() {
            return Err(Invalid::Empty);
        }
        if iban.starts_with("IT") {
            check_length(&iban, Self::IT_LEN, Self::IT_LEN)?;
        } else {
            check_length(&iban, 15, 34)?;
        }
        let b = iban.as_bytes();
        let structure_ok = b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..4].iter().all(u8::is_ascii_digit)
            && b[4..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        // Italian BBAN: CIN letter, 5-digit ABI, 5-digit CAB, 12-character account.
        let italian_ok =
            !iban.starts_with("IT") || (b[4].is_ascii_uppercase() && b[5..15].iter().all(u8::is_ascii_digit));
        if !structure_ok || !italian_ok {
            return Err(Invalid::Format);
        }
        if iban_mod97(b) != 1 {
            return Err(Invalid::CheckDigit);
        }
        Ok(Self(iban))
    }

    pub fn country(&self) -> &str {
        &self.0[..2]
    }
}

/// ISO 13616: the first four characters moved to the end, letters read as 10–35, the whole as one number mod 97.
/// Folded digit by digit because the number has up to 70 digits.
fn iban_mod97(b: &[u8]) -> u32 {
    b[4..].iter().chain(&b[..4]).fold(0, |rem, &c| {
        if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Bounded text

/// A trimmed, non-blank piece of text with an upper bound in characters (names, titles).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// `max` counts characters, not bytes: "Forlì-Cesena" is 12 long to the person typing it.
    pub fn parse(input: &str, max: usize) -> Result<Self, Invalid> {
        let text = input.trim();
        check_length(text, 1, max)?;
        // Control characters have no place in a name or a note (line breaks and tabs aside), and a NUL cannot
        // even be stored by PostgreSQL.
        if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Invalid::Format);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent statement of the codice fiscale check letter, written from the published table
    /// character by character rather than by ordinal, to cross-check `cf_check_letter`.
    fn reference_cf_check(first15: &str) -> char {
        const ODD: &str = "0:1 1:0 2:5 3:7 4:9 5:13 6:15 7:17 8:19 9:21 A:1 B:0 C:5 D:7 E:9 F:13 G:15 H:17 I:19 J:21 \
                           K:2 L:4 M:18 N:20 O:11 P:3 Q:6 R:8 S:12 T:14 U:16 V:10 W:22 X:25 Y:24 Z:23";
        let odd = |c: char| -> u32 {
            ODD.split(' ')
                .find_map(|kv| kv.strip_prefix(c).and_then(|v| v.strip_prefix(':')))
                .expect("character in table")
                .parse()
                .expect("number")
        };
        let even = |c: char| -> u32 { c.to_digit(10).unwrap_or_else(|| c as u32 - 'A' as u32) };
        let sum: u32 = first15.chars().enumerate().map(|(i, c)| if (i + 1) % 2 == 1 { odd(c) } else { even(c) }).sum();
        char::from(b'A' + (sum % 26) as u8)
    }

    /// Replaces the digits at the given code positions with their omocodia letters and recomputes the check.
    fn omocode(code: &str, positions: &[usize]) -> String {
        let mut chars: Vec<char> = code[..15].chars().collect();
        for &p in positions {
            let d = chars[p].to_digit(10).expect("a digit to replace") as usize;
            chars[p] = "LMNPQRSTUV".chars().nth(d).expect("0-9");
        }
        let first15: String = chars.into_iter().collect();
        let check = reference_cf_check(&first15);
        format!("{first15}{check}")
    }

    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).expect("serialises")
    }

    fn with_check(first15: &str) -> String {
        format!("{first15}{}", reference_cf_check(first15))
    }

    #[test]
    fn invalid_codes_are_stable() {
        assert_eq!(Invalid::Empty.code(), "required");
        assert_eq!(Invalid::TooLong { max: 3 }.code(), "too-long");
        assert_eq!(Invalid::TooShort { min: 3 }.code(), "too-short");
        assert_eq!(Invalid::Format.code(), "format");
        assert_eq!(Invalid::CheckDigit.code(), "check-digit");
    }

    #[test]
    fn reference_helper_agrees_with_a_published_code() {
        assert_eq!(reference_cf_check("RSSMRA85T10A562"), 'S');
    }

    #[test]
    fn person_tax_code_valid() {
        let c = PersonTaxCode::parse("RSSMRA85T10A562S").unwrap();
        assert_eq!(c.as_str(), "RSSMRA85T10A562S");
        assert_eq!(c.to_string(), "RSSMRA85T10A562S");
    }

    #[test]
    fn person_tax_code_normalises_case_and_whitespace() {
        let c = PersonTaxCode::parse("  rssmra85t10a562s\n").unwrap();
        assert_eq!(c.as_str(), "RSSMRA85T10A562S");
    }

    #[test]
    fn person_tax_code_wrong_check_letter() {
        assert_eq!(PersonTaxCode::parse("RSSMRA85T10A562T"), Err(Invalid::CheckDigit));
        // A transposition in the body, check letter left as it was.
        assert_eq!(PersonTaxCode::parse("RSSMRA58T10A562S"), Err(Invalid::CheckDigit));
    }

    #[test]
    fn person_tax_code_omocodia_last_digit() {
        let code = omocode("RSSMRA85T10A562S", &[14]);
        assert_eq!(code, "RSSMRA85T10A56NH");
        assert_eq!(PersonTaxCode::parse(&code).unwrap().as_str(), code);
        assert_eq!(PersonTaxCode::parse(&code.to_lowercase()).unwrap().as_str(), code);
    }

    #[test]
    fn person_tax_code_omocodia_several_and_all_digits() {
        let three = omocode("RSSMRA85T10A562S", &[12, 13, 14]);
        assert_eq!(three, "RSSMRA85T10ARSNO");
        assert!(PersonTaxCode::parse(&three).is_ok());
        let all = omocode("RSSMRA85T10A562S", &CF_DIGIT_POSITIONS);
        assert_eq!(all, "RSSMRAURTMLARSNL");
        assert!(PersonTaxCode::parse(&all).is_ok());
    }

    #[test]
    fn person_tax_code_omocodic_letter_checked_as_written() {
        // Decoding the letter back to its digit would make the original check letter match; it must not.
        assert_eq!(PersonTaxCode::parse("RSSMRA85T10A56NS"), Err(Invalid::CheckDigit));
    }

    #[test]
    fn person_tax_code_woman_day_plus_40() {
        let code = with_check("BNCLRA70A41H501");
        assert!(PersonTaxCode::parse(&code).is_ok(), "{code}");
        // Day 71 (31 + 40) is the last valid one, and it can be omocodic too.
        assert!(PersonTaxCode::parse(&with_check("BNCLRA70A71H501")).is_ok());
        assert!(PersonTaxCode::parse(&omocode(&with_check("BNCLRA70A71H501"), &[9, 10])).is_ok());
    }

    #[test]
    fn person_tax_code_structure_checked_before_check_letter() {
        // Each of these carries a correct check letter, so only the structure can refuse it.
        for bad in [
            "RSSMRA85Z10A562", // Z is not a month letter
            "RSSMRA85T00A562", // day 0
            "RSSMRA85T32A562", // day 32
            "RSSMRA85T40A562", // day 40: neither a man's nor a woman's
            "RSSMRA85T72A562", // day 72
            "RSSMRA85T10A5A2", // A is not an omocodia letter
            "RSSMR185T10A562", // digit among the surname/name letters
            "RSSMRA85T1WA562", // W is not an omocodia letter
            "RSSMRA85T109562", // municipality must start with a letter
        ] {
            assert_eq!(PersonTaxCode::parse(&with_check(bad)), Err(Invalid::Format), "{bad}");
        }
        // Omocodia letters decode before the day check: T = 7, so "TL" reads as day 70.
        assert!(PersonTaxCode::parse(&with_check("RSSMRA85TTLA562")).is_ok());
        // …and "UV" reads as day 89.
        assert_eq!(PersonTaxCode::parse(&with_check("RSSMRA85TUVA562")), Err(Invalid::Format));
    }

    #[test]
    fn person_tax_code_length_and_charset() {
        assert_eq!(PersonTaxCode::parse("   "), Err(Invalid::Empty));
        assert_eq!(PersonTaxCode::parse("RSSMRA85T10A562"), Err(Invalid::TooShort { min: 16 }));
        assert_eq!(PersonTaxCode::parse("RSSMRA85T10A562SX"), Err(Invalid::TooLong { max: 16 }));
        assert_eq!(PersonTaxCode::parse("RSSMRA85T10A562-"), Err(Invalid::Format));
        assert_eq!(PersonTaxCode::parse("RSSMRA85T10A 62S"), Err(Invalid::Format));
        // 16 characters but more bytes: must be Format, not a panic on slicing.
        assert_eq!(PersonTaxCode::parse("RSSMRÀ85T10A562S"), Err(Invalid::Format));
    }

    #[test]
    fn company_tax_code_and_partita_iva_valid() {
        // Real-world numbers whose check digits were verified outside this code before being asserted.
        for code in ["00743110157", "06363391001", "80213330584", "01234567897"] {
            assert_eq!(CompanyTaxCode::parse(code).unwrap().as_str(), code);
            assert_eq!(PartitaIva::parse(code).unwrap().as_str(), code);
        }
        assert_eq!(CompanyTaxCode::parse(" 00743110157 ").unwrap().as_str(), "00743110157");
    }

    #[test]
    fn eleven_digit_check_matches_worked_example() {
        // 0123456789: odd positions 0+2+4+6+8 = 20; even 1,3,5,7,9 doubled → 2,6,10-9=1,14-9=5,18-9=9 = 23;
        // (10 - 43 % 10) % 10 = 7.
        assert_eq!(eleven_digit_check(b"0123456789"), 7);
    }

    #[test]
    fn company_tax_code_wrong_check_digit() {
        assert_eq!(CompanyTaxCode::parse("00743110158"), Err(Invalid::CheckDigit));
        assert_eq!(PartitaIva::parse("01234567890"), Err(Invalid::CheckDigit));
        // Adjacent transposition in the body.
        assert_eq!(PartitaIva::parse("07043110157"), Err(Invalid::CheckDigit));
    }

    #[test]
    fn company_tax_code_format_and_length() {
        assert_eq!(CompanyTaxCode::parse(""), Err(Invalid::Empty));
        assert_eq!(CompanyTaxCode::parse("0074311015"), Err(Invalid::TooShort { min: 11 }));
        assert_eq!(CompanyTaxCode::parse("007431101577"), Err(Invalid::TooLong { max: 11 }));
        assert_eq!(CompanyTaxCode::parse("0074311015A"), Err(Invalid::Format));
        assert_eq!(CompanyTaxCode::parse("00000000000"), Err(Invalid::Format));
        // A company codice fiscale has no country prefix.
        assert_eq!(CompanyTaxCode::parse("IT00743110157"), Err(Invalid::TooLong { max: 11 }));
    }

    #[test]
    fn partita_iva_strips_it_prefix() {
        for input in ["IT00743110157", "it00743110157", " IT 00743110157 "] {
            assert_eq!(PartitaIva::parse(input).unwrap().as_str(), "00743110157", "{input}");
        }
        assert_eq!(PartitaIva::parse("IT"), Err(Invalid::TooShort { min: 11 }));
        assert_eq!(PartitaIva::parse("DE00743110157"), Err(Invalid::TooLong { max: 11 }));
        assert_eq!(PartitaIva::parse("IT00743110158"), Err(Invalid::CheckDigit));
    }

    #[test]
    fn tax_code_chooses_by_length() {
        assert!(
            matches!(TaxCode::parse("rssmra85t10a562s"), Ok(TaxCode::Person(c)) if c.as_str() == "RSSMRA85T10A562S")
        );
        assert!(matches!(TaxCode::parse(" 00743110157 "), Ok(TaxCode::Company(_))));
        assert_eq!(TaxCode::parse(""), Err(Invalid::Empty));
        assert_eq!(TaxCode::parse("0074311015"), Err(Invalid::Format));
        assert_eq!(TaxCode::parse("RSSMRA85T10A562T"), Err(Invalid::CheckDigit));
        assert_eq!(TaxCode::parse("00743110158"), Err(Invalid::CheckDigit));
        assert_eq!(TaxCode::parse("00743110157").unwrap().to_string(), "00743110157");
    }

    #[test]
    fn ipa_codes() {
        for (input, expected) in [("r_lombar", "r_lombar"), ("C_F205", "c_f205"), (" m_it ", "m_it"), ("agid", "agid")]
        {
            assert_eq!(IpaCode::parse(input).unwrap().as_str(), expected);
        }
        assert_eq!(IpaCode::parse(""), Err(Invalid::Empty));
        assert_eq!(IpaCode::parse("r"), Err(Invalid::TooShort { min: 2 }));
        assert_eq!(IpaCode::parse(&"a".repeat(33)), Err(Invalid::TooLong { max: 32 }));
        assert!(IpaCode::parse(&"a".repeat(32)).is_ok());
        for bad in ["1_lombar", "_lombar", "r-lombar", "r lombar", "r.lombar", "r_lombàr"] {
            assert_eq!(IpaCode::parse(bad), Err(Invalid::Format), "{bad}");
        }
    }

    #[test]
    fn emails_valid_and_normalised() {
        assert_eq!(Email::parse(" Mario.Rossi@Comune.Milano.IT ").unwrap().as_str(), "mario.rossi@comune.milano.it");
        let pec = Email::parse("protocollo@pec.regione.lombardia.it").unwrap();
        assert_eq!(pec.domain(), "pec.regione.lombardia.it");
        assert!(Email::parse("a+tag@x-y.example.org").is_ok());
        assert!(Email::parse("ufficio_tributi@comune.forli-cesena.it").is_ok());
    }

    #[test]
    fn emails_refused() {
        assert_eq!(Email::parse("  "), Err(Invalid::Empty));
        for bad in [
            "mario.rossi",
            "mario@rossi@example.it",
            "@example.it",
            "mario rossi@example.it",
            "mario@localhost",
            "mario@example..it",
            "mario@.example.it",
            "mario@example.it.",
            "mario@-example.it",
            "mario@example-.it",
            "mario@exa_mple.it",
            "mario@exàmple.it",
        ] {
            assert_eq!(Email::parse(bad), Err(Invalid::Format), "{bad}");
        }
        let long_local = format!("{}@example.it", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(Invalid::Format));
        let too_long = format!("a@{}.it", "b".repeat(250));
        assert_eq!(Email::parse(&too_long), Err(Invalid::TooLong { max: 254 }));
    }

    #[test]
    fn iban_valid_and_normalised() {
        let i = Iban::parse("IT60X0542811101000000123456").unwrap();
        assert_eq!(i.as_str(), "IT60X0542811101000000123456");
        assert_eq!(i.country(), "IT");
        let spaced = Iban::parse(" it60 x054 2811 1010 0000 0123 456 ").unwrap();
        assert_eq!(spaced, i);
        // ISO 13616 examples from other registries, shortest (Norway, 15) to a long one (Malta, 31).
        for other in
            ["GB82WEST12345698765432", "DE89370400440532013000", "NO9386011117947", "MT84MALT011000012345MTLCAST001S"]
        {
            assert_eq!(Iban::parse(other).unwrap().as_str(), other);
        }
    }

    #[test]
    fn iban_refused() {
        assert_eq!(Iban::parse(""), Err(Invalid::Empty));
        assert_eq!(Iban::parse("IT60X0542811101000000123457"), Err(Invalid::CheckDigit));
        assert_eq!(Iban::parse("IT61X0542811101000000123456"), Err(Invalid::CheckDigit));
        assert_eq!(Iban::parse("GB82WEST12345698765433"), Err(Invalid::CheckDigit));
        assert_eq!(Iban::parse("IT60X054281110100000012345"), Err(Invalid::TooShort { min: 27 }));
        assert_eq!(Iban::parse("IT60X05428111010000001234567"), Err(Invalid::TooLong { max: 27 }));
        assert_eq!(Iban::parse("NO938601111794"), Err(Invalid::TooShort { min: 15 }));
        assert_eq!(Iban::parse(&format!("GB82{}", "1".repeat(31))), Err(Invalid::TooLong { max: 34 }));
        assert_eq!(Iban::parse("IT60X05428111010000001234-6"), Err(Invalid::Format));
        // Italian structure: the CIN must be a letter, ABI and CAB digits.
        assert_eq!(Iban::parse("IT6050542811101000000123456"), Err(Invalid::Format));
        assert_eq!(Iban::parse("IT60X0542A11101000000123456"), Err(Invalid::Format));
        assert_eq!(Iban::parse("1T60X0542811101000000123456"), Err(Invalid::Format));
    }

    #[test]
    fn text_bounds_in_chars() {
        assert_eq!(Text::parse("  Forlì-Cesena  ", 12).unwrap().as_str(), "Forlì-Cesena");
        assert_eq!(Text::parse("Forlì-Cesena", 11), Err(Invalid::TooLong { max: 11 }));
        assert_eq!(Text::parse(" \t\n ", 10), Err(Invalid::Empty));
        assert_eq!(Text::parse("", 10), Err(Invalid::Empty));
        assert_eq!(Text::parse("Comune di Bergamo", 100).unwrap().into_string(), "Comune di Bergamo");
    }

    #[test]
    fn serialises_as_plain_strings() {
        assert_eq!(json(&PersonTaxCode::parse("rssmra85t10a562s").unwrap()), r#""RSSMRA85T10A562S""#);
        assert_eq!(json(&TaxCode::parse("00743110157").unwrap()), r#""00743110157""#);
        assert_eq!(json(&PartitaIva::parse("IT00743110157").unwrap()), r#""00743110157""#);
        assert_eq!(
            json(&Iban::parse("IT60 X054 2811 1010 0000 0123 456").unwrap()),
            r#""IT60X0542811101000000123456""#
        );
        assert_eq!(json(&Email::parse("A@B.IT").unwrap()), r#""a@b.it""#);
        assert_eq!(json(&IpaCode::parse("R_LOMBAR").unwrap()), r#""r_lombar""#);
        assert_eq!(json(&Text::parse(" \"Ciao\" ", 10).unwrap()), r#""\"Ciao\"""#);
    }

    #[test]
    fn from_str_goes_through_parse() {
        assert_eq!("rssmra85t10a562s".parse::<PersonTaxCode>().unwrap().as_str(), "RSSMRA85T10A562S");
        assert_eq!("IT00743110158".parse::<PartitaIva>(), Err(Invalid::CheckDigit));
    }
}
