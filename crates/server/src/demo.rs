//! Demo data, seeded on the first start of `serve --demo`: the operator, the region, three regional entities and a
//! municipality that joined, with an account for every role. The logins are printed and listed in the README.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::identity::{self, NewAccount, Role};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::tenancy::{self, OrgInput};
use agilekit_kernel::{Db, Error};

pub const PASSWORD: &str = "demo-agilekit-2026";

/// (email, name, organisation IPA code, roles); `None` for a public account.
pub const ACCOUNTS: &[(&str, &str, Option<&str>, &[Role])] = &[
    ("operatore@aria.example", "Paola Operatrice", Some("aria_spa"), &[Role::PlatformAdmin, Role::OrgAdmin, Role::Agent]),
    ("admin@regione.example", "Marco Amministratore", Some("r_lombar"), &[Role::OrgAdmin]),
    ("hr@regione.example", "Giulia Risorse", Some("r_lombar"), &[Role::Hr]),
    ("manager@regione.example", "Luca Dirigente", Some("r_lombar"), &[Role::Manager, Role::Employee]),
    ("dipendente@regione.example", "Sara Dipendente", Some("r_lombar"), &[Role::Employee]),
    ("agente@regione.example", "Davide Helpdesk", Some("r_lombar"), &[Role::Agent, Role::Employee]),
    ("formatore@regione.example", "Elena Formatrice", Some("r_lombar"), &[Role::Trainer, Role::Employee]),
    ("valutatore@regione.example", "Paolo Valutatore", Some("r_lombar"), &[Role::Evaluator, Role::Employee]),
    ("admin@arpa.example", "Chiara Ambiente", Some("arpa_lom"), &[Role::OrgAdmin, Role::Employee]),
    ("admin@comune.example", "Roberto Sindaco", Some("c_b157"), &[Role::OrgAdmin, Role::Employee]),
    ("cittadino@example.it", "Anna Cittadina", None, &[]),
];

/// Appends the check digit of an 11-digit codice fiscale of a company to its first ten digits.
fn company_code(first10: &str) -> String {
    let d: Vec<u32> = first10.chars().filter_map(|c| c.to_digit(10)).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first10}{}", (10 - (x + y) % 10) % 10)
}

/// Seeds the demo unless an operator organisation already exists. Returns whether it seeded.
pub async fn seed(db: &Db) -> Result<bool, Error> {
    if tenancy::operator(db).await?.is_some() {
        return Ok(false);
    }
    let actor = Actor::system();
    let org = |name: &str, kind: &str, ipa: &str, tax: &str, parent: Option<OrgId>| OrgInput {
        name: name.into(),
        kind: kind.into(),
        ipa_code: ipa.into(),
        tax_code: company_code(tax),
        pec: format!("protocollo@pec.{}.example", ipa.replace('_', "-")),
        parent_id: parent.map(|p| p.to_string()),
    };
    let operator = tenancy::create(db, &actor, &org("ARIA S.p.A.", "operator", "aria_spa", "0567001015", None)).await?;
    let region = tenancy::create(db, &actor, &org("Regione Lombardia", "region", "r_lombar", "8005005015", None)).await?;
    let mut ids = vec![("aria_spa", operator.id), ("r_lombar", region.id)];
    for (name, ipa, tax) in [
        ("ARPA Lombardia", "arpa_lom", "1069605015"),
        ("ERSAF — Ente regionale per i servizi all'agricoltura e alle foreste", "ersaf", "1284205015"),
        ("Agenzia regionale per l'istruzione, la formazione e il lavoro", "arifl", "0970105015"),
    ] {
        let o = tenancy::create(db, &actor, &org(name, "regional_entity", ipa, tax, Some(region.id))).await?;
        ids.push((ipa, o.id));
    }
    let town = tenancy::create(db, &actor, &org("Comune di Brescia", "local_authority", "c_b157", "0075202017", None)).await?;
    ids.push(("c_b157", town.id));
    let id_of = |ipa: &str| ids.iter().find(|(i, _)| *i == ipa).map(|(_, id)| *id);

    for (ipa, services) in [
        ("r_lombar", &[Service::RemoteAccess, Service::Workstations, Service::Meetings, Service::Helpdesk, Service::Learning, Service::Consultations, Service::Grants][..]),
        ("arpa_lom", &[Service::RemoteAccess, Service::Meetings, Service::Helpdesk][..]),
        ("c_b157", &[Service::RemoteAccess, Service::Learning][..]),
    ] {
        let Some(org) = id_of(ipa) else { continue };
        for s in services {
            catalogue::subscribe(db, &actor, org, *s, true).await?;
        }
    }
    if let Some(r) = id_of("r_lombar") {
        catalogue::set_quota(db, &actor, r, Service::RemoteAccess, "vpn_seats", Some(4500)).await?;
        catalogue::set_quota(db, &actor, r, Service::Workstations, "workstations", Some(4500)).await?;
        catalogue::set_quota(db, &actor, r, Service::Meetings, "rooms", Some(200)).await?;
        catalogue::set_quota(db, &actor, r, Service::Helpdesk, "agents", Some(40)).await?;
        catalogue::set_quota(db, &actor, r, Service::Learning, "learners", None).await?;
    }
    if let Some(a) = id_of("arpa_lom") {
        catalogue::set_quota(db, &actor, a, Service::RemoteAccess, "vpn_seats", Some(800)).await?;
    }
    if let Some(c) = id_of("c_b157") {
        catalogue::set_quota(db, &actor, c, Service::RemoteAccess, "vpn_seats", Some(150)).await?;
    }
    if let Some(arifl) = id_of("arifl") {
        catalogue::subscribe(db, &actor, arifl, Service::Helpdesk, false).await?;
    }

    for (email, name, ipa, roles) in ACCOUNTS {
        let acc = identity::create(db, &actor, &NewAccount {
            email: (*email).into(),
            display_name: (*name).into(),
            password: PASSWORD.into(),
            is_public: ipa.is_none(),
            ..Default::default()
        })
        .await?;
        if let Some(org) = ipa.and_then(id_of) {
            for r in *roles {
                identity::grant(db, &actor, org, acc.id, *r).await?;
            }
        }
    }
    // The region's administrator also administers ARPA: the organisation switcher has something to switch.
    if let (Some(admin), Some(arpa)) = (identity::find_by_email(db, "admin@regione.example").await?, id_of("arpa_lom")) {
        identity::grant(db, &actor, arpa, admin.id, Role::OrgAdmin).await?;
    }
    // Remote access: the region's VPN network and a gateway, set up as the operator would.
    if let (Some(r), Some(op)) = (id_of("r_lombar"), identity::find_by_email(db, "operatore@aria.example").await?) {
        let operator = agilekit_kernel::authz::Principal::load(db, op.id).await?;
        agilekit_remote_access::service::seed_demo(db, &operator, r).await?;
    }
    // Remote workstations of the region: two dedicated PCs and a pool. Loopback addresses, so that the demo's
    // reachability probes never send a packet off the machine (they show as offline).
    if let (Some(r), Some(admin)) = (id_of("r_lombar"), identity::find_by_email(db, "admin@regione.example").await?) {
        let admin = agilekit_kernel::authz::Principal::load(db, admin.id).await?;
        for (i, mode, assignee, place) in [(1, "dedicated", "dipendente@regione.example", "Milano, Palazzo Lombardia, piano 12"),
            (2, "dedicated", "manager@regione.example", "Milano, Palazzo Lombardia, piano 12"), (101, "pooled", "", "Milano, Palazzo Lombardia, sala 3"),
            (102, "pooled", "", "Milano, Palazzo Lombardia, sala 3"), (103, "pooled", "", "Brescia, sede territoriale")] {
            let input = agilekit_workstations::model::WorkstationInput { hostname: format!("pc-lom-{i:04}.regione.example"),
                address: format!("127.0.10.{i}"), os: "Windows 11 Pro".into(), location: place.into(), tags: "ufficio".into(),
                mac: format!("00:1a:2b:00:00:{i:02x}"), mode: mode.into(), assignee: assignee.into(), ..Default::default() };
            agilekit_workstations::service::create(db, &actor, &admin, r, &input).await?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn company_codes_get_their_check_digit() {
        assert_eq!(super::company_code("8005005015"), "80050050154");
        assert_eq!(super::company_code("1234567890"), "12345678903");
    }
}
