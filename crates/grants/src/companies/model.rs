//! A company as it registers: its identifiers checked with their check characters, its size, sector and sites,
//! and the de minimis aid it declares. No I/O.

use agilekit_kernel::FieldErrors;
use agilekit_kernel::validate::{Email, PartitaIva, PersonTaxCode, TaxCode, Text};
use serde::{Deserialize, Serialize};
use time::Date;

use crate::model::{Ateco, CENTS_MAX, Cents};

agilekit_kernel::typed_id!(
    /// A company registered on the platform.
    CompanyId
);
agilekit_kernel::typed_id!(
    /// A de minimis aid a company declared.
    AidId
);

pub const NAME_MAX: usize = 200;
pub const ADDRESS_MAX: usize = 300;
pub const BODY_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 500;
pub const EMPLOYEES_MAX: i64 = 1_000_000;

/// The Italian regions by ISTAT code.
pub const REGIONS: &[(&str, &str)] = &[
    ("01", "Piemonte"),
    ("02", "Valle d'Aosta"),
    ("03", "Lombardia"),
    ("04", "Trentino-Alto Adige"),
    ("05", "Veneto"),
    ("06", "Friuli-Venezia Giulia"),
    ("07", "Liguria"),
    ("08", "Emilia-Romagna"),
    ("09", "Toscana"),
    ("10", "Umbria"),
    ("11", "Marche"),
    ("12", "Lazio"),
    ("13", "Abruzzo"),
    ("14", "Molise"),
    ("15", "Campania"),
    ("16", "Puglia"),
    ("17", "Basilicata"),
    ("18", "Calabria"),
    ("19", "Sicilia"),
    ("20", "Sardegna"),
];

pub fn region_name(code: &str) -> Option<&'static str> {
    REGIONS.iter().find(|r| r.0 == code).map(|r| r.1)
}

/// How a person acts for a company: the owner registered it and manages its delegates; both act for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Delegate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Delegate => "delegate",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "delegate" => Some(Role::Delegate),
            _ => None,
        }
    }
}

/// A company as typed (API body or page form).
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CompanyInput {
    pub name: String,
    /// 11 digits with the check digit.
    pub partita_iva: String,
    /// The company's codice fiscale: 11 digits, or a sole proprietor's 16 characters; empty means the partita IVA.
    pub tax_code: String,
    /// Certified mail (PEC): every step of an application is sent there.
    pub pec: String,
    pub legal_rep_name: String,
    /// The legal representative's personal codice fiscale (16 characters, omocodia accepted).
    pub legal_rep_tax_code: String,
    pub employees: Option<i64>,
    /// ATECO code of the main activity: `62.01.00`, `62.01`, `62`.
    pub sector: String,
    /// ISTAT codes of the regions where it has a site (`03` is Lombardia).
    pub site_regions: Vec<String>,
    pub address: String,
}

/// A company input that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valid {
    pub name: String,
    pub partita_iva: String,
    pub tax_code: String,
    pub pec: String,
    pub legal_rep_name: String,
    pub legal_rep_tax_code: String,
    pub employees: i64,
    pub sector: Ateco,
    pub site_regions: Vec<String>,
    pub address: String,
}

impl CompanyInput {
    pub fn validate(&self) -> Result<Valid, FieldErrors> {
        let mut e = FieldErrors::new();
        let name = e.check("name", Text::parse(&self.name, NAME_MAX));
        let piva = e.check("partita_iva", PartitaIva::parse(&self.partita_iva));
        let tax_code = if self.tax_code.trim().is_empty() {
            piva.as_ref().map(|p| p.as_str().to_owned())
        } else {
            e.check("tax_code", TaxCode::parse(&self.tax_code)).map(|t| t.as_str().to_owned())
        };
        let pec = e.check("pec", Email::parse(&self.pec));
        let legal_rep_name = e.check("legal_rep_name", Text::parse(&self.legal_rep_name, NAME_MAX));
        let legal_rep_tax_code = e.check("legal_rep_tax_code", PersonTaxCode::parse(&self.legal_rep_tax_code));
        let employees = match self.employees {
            None => {
                e.add("employees", "required");
                None
            }
            Some(n) if !(0..=EMPLOYEES_MAX).contains(&n) => {
                e.add("employees", "out-of-range");
                None
            }
            Some(n) => Some(n),
        };
        let sector = e.check("sector", Ateco::parse(&self.sector));
        let mut regions: Vec<String> = Vec::new();
        for (i, r) in self.site_regions.iter().enumerate() {
            let r = r.trim();
            if region_name(r).is_none() {
                e.add(&format!("site_regions.{i}"), "unknown-region");
            } else if !regions.iter().any(|x| x == r) {
                regions.push(r.to_owned());
            }
        }
        if self.site_regions.is_empty() {
            e.add("site_regions", "required");
        }
        let address = if self.address.trim().is_empty() {
            Some(String::new())
        } else {
            e.check("address", Text::parse(&self.address, ADDRESS_MAX)).map(Text::into_string)
        };
        match (name, piva, tax_code, pec, legal_rep_name, legal_rep_tax_code, employees, sector, address) {
            (Some(name), Some(piva), Some(tax_code), Some(pec), Some(rn), Some(rt), Some(employees), Some(sector), Some(address))
                if e.is_empty() =>
            {
                Ok(Valid {
                    name: name.into_string(),
                    partita_iva: piva.as_str().to_owned(),
                    tax_code,
                    pec: pec.as_str().to_owned(),
                    legal_rep_name: rn.into_string(),
                    legal_rep_tax_code: rt.as_str().to_owned(),
                    employees,
                    sector,
                    site_regions: regions,
                    address,
                })
            }
            _ => Err(e),
        }
    }
}

/// A de minimis aid as declared.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AidInput {
    /// The day it was granted, `YYYY-MM-DD`.
    pub granted_on: String,
    /// In euro cents.
    pub amount_cents: Option<i64>,
    /// Who granted it.
    pub granting_body: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidAid {
    pub granted_on: Date,
    pub amount: Cents,
    pub granting_body: String,
    pub description: String,
}

impl AidInput {
    /// `today` bounds the date: aid is declared once granted.
    pub fn validate(&self, today: Date) -> Result<ValidAid, FieldErrors> {
        let mut e = FieldErrors::new();
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let granted_on = match Date::parse(self.granted_on.trim(), &fmt) {
            _ if self.granted_on.trim().is_empty() => {
                e.add("granted_on", "required");
                None
            }
            Ok(d) if d > today => {
                e.add("granted_on", "in-the-future");
                None
            }
            Ok(d) if d.year() < 1990 => {
                e.add("granted_on", "too-old");
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                e.add("granted_on", "bad-date");
                None
            }
        };
        let amount = match self.amount_cents {
            None => {
                e.add("amount_cents", "required");
                None
            }
            Some(c) if c <= 0 => {
                e.add("amount_cents", "not-positive");
                None
            }
            Some(c) if c > CENTS_MAX => {
                e.add("amount_cents", "too-large");
                None
            }
            Some(c) => Some(Cents(c)),
        };
        let body = e.check("granting_body", Text::parse(&self.granting_body, BODY_MAX));
        let description = if self.description.trim().is_empty() {
            Some(String::new())
        } else {
            e.check("description", Text::parse(&self.description, DESCRIPTION_MAX)).map(Text::into_string)
        };
        match (granted_on, amount, body, description) {
            (Some(granted_on), Some(amount), Some(b), Some(description)) if e.is_empty() => {
                Ok(ValidAid { granted_on, amount, granting_body: b.into_string(), description })
            }
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn good() -> CompanyInput {
        CompanyInput {
            name: "Lavoro Agile S.r.l.".into(),
            partita_iva: "12345678903".into(),
            tax_code: String::new(),
            pec: "lavoroagile@pec.example.it".into(),
            legal_rep_name: "Mario Rossi".into(),
            legal_rep_tax_code: "RSSMRA85T10A562S".into(),
            employees: Some(12),
            sector: "62.01.00".into(),
            site_regions: vec!["03".into(), "03".into(), "05".into()],
            address: String::new(),
        }
    }

    #[test]
    fn a_good_company_passes_and_takes_its_partita_iva_as_tax_code() {
        let v = good().validate().unwrap();
        assert_eq!(v.tax_code, "12345678903");
        assert_eq!(v.site_regions, ["03", "05"]);
        assert_eq!(v.sector.to_string(), "62.01.00");
        // A sole proprietor's personal code, with omocodia.
        let v = CompanyInput { tax_code: "RSSMRA85T10A56NH".into(), ..good() }.validate().unwrap();
        assert_eq!(v.tax_code, "RSSMRA85T10A56NH");
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = CompanyInput {
            name: " ".into(),
            partita_iva: "12345678901".into(),
            tax_code: "XYZ".into(),
            pec: "not-mail".into(),
            legal_rep_name: String::new(),
            legal_rep_tax_code: "RSSMRA85T10A562X".into(),
            employees: Some(-1),
            sector: "6".into(),
            site_regions: vec!["03".into(), "99".into()],
            address: String::new(),
        };
        let e = bad.validate().unwrap_err();
        for (f, code) in [
            ("name", "required"),
            ("partita_iva", "check-digit"),
            ("pec", "format"),
            ("legal_rep_name", "required"),
            ("legal_rep_tax_code", "check-digit"),
            ("employees", "out-of-range"),
            ("sector", "format"),
            ("site_regions.1", "unknown-region"),
        ] {
            assert_eq!(e.get(f), Some(code), "{f}: {e:?}");
        }
        assert!(e.get("tax_code").is_some());
        let e = CompanyInput { employees: None, site_regions: vec![], ..good() }.validate().unwrap_err();
        assert_eq!(e.get("employees"), Some("required"));
        assert_eq!(e.get("site_regions"), Some("required"));
    }

    #[test]
    fn aid_dates_and_amounts() {
        let today = date!(2026 - 12 - 05);
        let ok = AidInput { granted_on: "2025-03-01".into(), amount_cents: Some(1_000_00), granting_body: "Regione".into(), description: String::new() };
        assert_eq!(ok.validate(today).unwrap().amount, Cents(1_000_00));
        let e = AidInput { granted_on: "2027-01-01".into(), amount_cents: Some(0), granting_body: String::new(), ..ok.clone() }.validate(today).unwrap_err();
        assert_eq!(e.get("granted_on"), Some("in-the-future"));
        assert_eq!(e.get("amount_cents"), Some("not-positive"));
        assert_eq!(e.get("granting_body"), Some("required"));
        let e = AidInput { granted_on: "1/3/2025".into(), amount_cents: None, ..ok }.validate(today).unwrap_err();
        assert_eq!(e.get("granted_on"), Some("bad-date"));
        assert_eq!(e.get("amount_cents"), Some("required"));
    }
}
