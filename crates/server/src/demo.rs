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
    // Funding calls: the region's smart-working call, open now (a sportello, the 2020 bands), one ranked call that
    // opens in two weeks, and a company for the public account, so a newcomer can fill in an application.
    if let (Some(r), Some(admin)) = (id_of("r_lombar"), identity::find_by_email(db, "admin@regione.example").await?) {
        let admin = agilekit_kernel::authz::Principal::load(db, admin.id).await?;
        seed_calls(db, &actor, &admin, r).await?;
    }
    if let Some(anna) = identity::find_by_email(db, "cittadino@example.it").await? {
        let anna = agilekit_kernel::authz::Principal::load(db, anna.id).await?;
        agilekit_grants::companies::service::register(db, &actor, &anna, &agilekit_grants::companies::model::CompanyInput {
            name: "Studio Cittadini S.r.l.".into(),
            partita_iva: DEMO_COMPANY_PIVA.into(),
            pec: "studio.cittadini@pec.example.it".into(),
            legal_rep_name: "Anna Cittadina".into(),
            legal_rep_tax_code: "CTTNNA80C55F205G".into(),
            employees: Some(12),
            sector: "62.01".into(),
            site_regions: vec!["03".into()],
            address: "Via Dante 7, 20121 Milano".into(),
            ..Default::default()
        })
        .await?;
    }
    Ok(true)
}

/// The partita IVA of the demo's company (represented by `cittadino@example.it`).
pub const DEMO_COMPANY_PIVA: &str = "04567890126";
/// The titles of the demo's calls (published; the first is open).
pub const DEMO_CALLS: [&str; 2] = ["Avviso smart working 2026", "Premio al lavoro agile 2027"];

async fn seed_calls(db: &Db, actor: &Actor, admin: &agilekit_kernel::authz::Principal, region: OrgId) -> Result<(), Error> {
    use agilekit_grants::calls::{model::{Attachment, CallInput, Category, Criterion, EligibilityInput, FaqInput}, service};
    use agilekit_grants::model::{Band, Cents, GrantRule};
    let day = |d: i64| {
        let t = agilekit_kernel::clock::now() + time::Duration::days(d);
        t.replace_time(time::Time::from_hms(10, 0, 0).unwrap_or(time::Time::MIDNIGHT))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let band = |min: u32, max: Option<u32>, euro: i64| Band { min_employees: min, max_employees: max, amount: Cents(euro * 100) };
    let categories = vec![
        Category { code: "consulenza".into(), label: "Consulenza e formazione".into(), max_share_bp: None },
        Category { code: "strumenti".into(), label: "Strumenti tecnologici".into(), max_share_bp: Some(7000) },
    ];
    let open = CallInput {
        title: DEMO_CALLS[0].into(),
        summary: "Contributi a fondo perduto alle imprese lombarde per adottare piani aziendali di smart working.".into(),
        body: "## Finalità\nSostenere le imprese che adottano un piano di smart working per i propri dipendenti.\n\n\
               ## Spese ammissibili\nConsulenza e formazione; strumenti tecnologici (hardware, software, servizi cloud) \
               fino al 70% del totale.\n\n## Procedura\nA sportello: le domande sono ammesse in ordine di protocollo \
               fino a esaurimento della dotazione; le successive entrano in lista d'attesa."
            .into(),
        budget_cents: Some(4_500_000_00),
        mode: "sportello".into(),
        grant_rule: Some(GrantRule::Bands { bands: vec![band(3, Some(10), 7_500), band(11, Some(20), 10_500), band(21, Some(30), 15_000), band(31, None, 22_500)] }),
        categories: categories.clone(),
        eligibility: EligibilityInput { min_employees: 3, max_employees: None, excluded_sectors: vec!["01".into(), "64.19".into()], site_region: Some("03".into()) },
        required_attachments: vec![Attachment { code: "piano".into(), label: "Piano aziendale di smart working".into() }],
        opens_at: day(-1),
        closes_at: day(60),
        de_minimis: true,
        criteria: vec![],
        tie_breaks: vec![],
    };
    let call = service::create(db, actor, admin, region, &open).await?;
    service::publish(db, actor, admin, region, call.id).await?;
    for (q, a) in [
        ("Chi può presentare domanda?", "Le imprese con almeno 3 dipendenti e una sede operativa in Lombardia, esclusi i settori agricolo (ATECO 01) e dell'intermediazione monetaria (64.19)."),
        ("Come è stabilito l'ordine delle domande?", "Dal numero di protocollo assegnato all'invio: conta l'istante in cui la domanda è registrata, non quello in cui è stata compilata."),
    ] {
        service::add_faq(db, actor, admin, region, call.id, &FaqInput { question: q.into(), answer: a.into() }).await?;
    }
    let ranked = CallInput {
        title: DEMO_CALLS[1].into(),
        summary: "Contributi ai progetti di lavoro agile più innovativi, in graduatoria.".into(),
        body: "## Finalità\nPremiare i progetti che migliorano conciliazione, produttività e sostenibilità.".into(),
        budget_cents: Some(1_000_000_00),
        mode: "graduatoria".into(),
        grant_rule: Some(GrantRule::Share { basis_points: 5000, cap: Cents(25_000_00) }),
        categories,
        eligibility: EligibilityInput { min_employees: 1, max_employees: Some(249), excluded_sectors: vec![], site_region: Some("03".into()) },
        required_attachments: vec![Attachment { code: "progetto".into(), label: "Progetto di lavoro agile".into() }],
        opens_at: day(14),
        closes_at: day(44),
        de_minimis: true,
        criteria: vec![
            Criterion { code: "qualita".into(), label: "Qualità del progetto".into(), max_points: 40 },
            Criterion { code: "impatto".into(), label: "Impatto su conciliazione e ambiente".into(), max_points: 30 },
            Criterion { code: "cofinanziamento".into(), label: "Cofinanziamento oltre il minimo".into(), max_points: 30 },
        ],
        tie_breaks: vec!["qualita".into(), "impatto".into()],
    };
    let call = service::create(db, actor, admin, region, &ranked).await?;
    service::publish(db, actor, admin, region, call.id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn company_codes_get_their_check_digit() {
        assert_eq!(super::company_code("8005005015"), "80050050154");
        assert_eq!(super::company_code("1234567890"), "12345678903");
    }
}
