//! The VPN's rules and transactions: who may do what, in which state, within which quota. Every change is audited
//! in its own transaction, and every change of a network's peer set or access lists moves the network's version in
//! that same transaction, which wakes the gateways' long-polls. Handlers (pages and API) call only this.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::db::DbError;
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::mail::{self, Mail};
use agilekit_kernel::validate::Text;
use agilekit_kernel::{Db, Error, FieldErrors, Result, clock};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::model::{
    AccessGroupId, Cidr, ConfigInput, DeviceId, DeviceState, GatewayId, KeyPair, NetworkId, WgKey, codes, last_slot,
    parse_cidrs, parse_endpoint_host, pool_capacity, render_config,
};
use crate::store::{self, DeviceRow, GatewayRow, Group, GroupRow, NetworkRow};

pub const SEATS: &str = "vpn_seats";

// ---------------------------------------------------------------------------------------------------------------
// Who may

/// Members see their organisation's networks and their own devices; anyone else learns nothing (404).
pub fn require_member(p: &Principal, org: OrgId) -> Result<()> {
    if p.is_member(org) || p.platform_admin { Ok(()) } else { Err(Error::NotFound) }
}

/// Reading every device, gateway and group: the organisation's admins and HR, platform admins.
pub fn require_view(p: &Principal, org: OrgId) -> Result<()> {
    if p.can_view_org(org) {
        Ok(())
    } else if p.is_member(org) {
        Err(Error::Forbidden)
    } else {
        Err(Error::NotFound)
    }
}

/// Changing networks, gateways, groups, approving and revoking others' devices: org admins, platform admins.
pub fn require_admin(p: &Principal, org: OrgId) -> Result<()> {
    if p.can_admin_org(org) {
        Ok(())
    } else if p.is_member(org) {
        Err(Error::Forbidden)
    } else {
        Err(Error::NotFound)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The long-poll's wake-up: per process, per network. Other nodes' changes are seen by re-reading the version.

pub mod hub {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    use tokio::sync::Notify;

    use crate::model::NetworkId;

    fn map() -> &'static Mutex<HashMap<NetworkId, Arc<Notify>>> {
        static M: OnceLock<Mutex<HashMap<NetworkId, Arc<Notify>>>> = OnceLock::new();
        M.get_or_init(Default::default)
    }

    pub fn notifier(n: NetworkId) -> Arc<Notify> {
        map().lock().unwrap_or_else(PoisonError::into_inner).entry(n).or_default().clone()
    }

    /// Wakes this node's long-polls of the network (call after the commit).
    pub fn notify(n: NetworkId) {
        if let Some(x) = map().lock().unwrap_or_else(PoisonError::into_inner).get(&n) {
            x.notify_waiters();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Views

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Network {
    pub id: NetworkId,
    pub org_id: OrgId,
    pub name: String,
    /// The IPv4 pool, e.g. `10.8.0.0/19`. The gateway takes the first host address; devices the following ones.
    pub ipv4_cidr: String,
    pub ipv6_cidr: Option<String>,
    /// DNS servers written into the devices' files.
    pub dns: Vec<String>,
    /// New devices wait for an administrator's approval.
    pub require_approval: bool,
    /// How long a device works before it must be renewed.
    pub default_expiry_days: i64,
    /// Moves on with every change of the peer set or of the access lists.
    pub version: i64,
    /// How many devices the pools can hold.
    pub capacity: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl Network {
    fn from_row(r: NetworkRow) -> Network {
        let capacity = pools(&r).map(|(v4, v6)| pool_capacity(&v4, v6.as_ref())).unwrap_or(0);
        Network {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            ipv4_cidr: r.ipv4_cidr,
            ipv6_cidr: r.ipv6_cidr,
            dns: split(&r.dns),
            require_approval: r.require_approval,
            default_expiry_days: r.default_expiry_days,
            version: r.version,
            capacity: i64::try_from(capacity).unwrap_or(i64::MAX),
            created_at: r.created_at,
        }
    }
}

fn split(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn pools(r: &NetworkRow) -> Option<(Cidr, Option<Cidr>)> {
    let v4 = Cidr::parse(&r.ipv4_cidr).ok()?;
    let v6 = match &r.ipv6_cidr {
        Some(s) => Some(Cidr::parse(s).ok()?),
        None => None,
    };
    Some((v4, v6))
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Gateway {
    pub id: GatewayId,
    pub network_id: NetworkId,
    pub name: String,
    /// Public host name or address the devices connect to.
    pub endpoint: String,
    pub port: u16,
    pub public_key: String,
    /// The internal networks it routes.
    pub routes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl Gateway {
    fn from_row(r: &GatewayRow) -> Gateway {
        Gateway {
            id: r.id,
            network_id: r.network_id,
            name: r.name.clone(),
            endpoint: r.endpoint.clone(),
            port: u16::try_from(r.port).unwrap_or(0),
            public_key: r.public_key.clone(),
            routes: split(&r.routes),
            last_seen_at: r.last_seen_at,
            created_at: r.created_at,
        }
    }
}

/// A gateway just registered (or its token renewed): the token is in this answer only.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NewGateway {
    #[serde(flatten)]
    pub gateway: Gateway,
    /// `agilekit gateway --token …`: shown once, stored only as a hash.
    pub token: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AccessGroup {
    pub id: AccessGroupId,
    pub network_id: NetworkId,
    pub name: String,
    /// Roles in the organisation whose holders are in the group (`employee`, `manager`, …).
    pub roles: Vec<String>,
    /// Accounts in the group by name.
    pub accounts: Vec<AccountId>,
    /// Internal prefixes the group's devices may reach.
    pub allow: Vec<String>,
}

impl AccessGroup {
    fn from(g: &Group) -> AccessGroup {
        AccessGroup {
            id: g.row.id,
            network_id: g.row.network_id,
            name: g.row.name.clone(),
            roles: g.roles.clone(),
            accounts: g.accounts.clone(),
            allow: g.allow.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Device {
    pub id: DeviceId,
    pub org_id: OrgId,
    pub network_id: NetworkId,
    pub network_name: String,
    pub account_id: AccountId,
    pub owner_email: String,
    pub owner_name: String,
    pub name: String,
    pub public_key: String,
    pub state: DeviceState,
    pub address_v4: String,
    pub address_v6: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The last WireGuard handshake its gateway reported.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_handshake_at: Option<OffsetDateTime>,
    /// Handshake within the last 3 minutes.
    pub connected: bool,
    pub rx_bytes: i64,
    pub tx_bytes: i64,
    /// Where the device last connected from.
    pub endpoint: Option<String>,
}

impl Device {
    pub fn from_row(r: DeviceRow, now: OffsetDateTime) -> Device {
        let state = DeviceState::parse(&r.state).unwrap_or(DeviceState::Revoked);
        Device {
            connected: state == DeviceState::Active
                && r.last_handshake_at.is_some_and(|h| now - h < crate::model::CONNECTED_WITHIN),
            id: r.id,
            org_id: r.org_id,
            network_id: r.network_id,
            network_name: r.network_name,
            account_id: r.account_id,
            owner_email: r.owner_email,
            owner_name: r.owner_name,
            name: r.name,
            public_key: r.public_key,
            state,
            address_v4: r.address_v4,
            address_v6: r.address_v6,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_handshake_at: r.last_handshake_at,
            rx_bytes: r.rx_bytes,
            tx_bytes: r.tx_bytes,
            endpoint: r.endpoint,
        }
    }

    fn audit_json(&self) -> serde_json::Value {
        json!({"name": self.name, "network_id": self.network_id, "account_id": self.account_id, "public_key": self.public_key,
               "state": self.state.as_str(), "address_v4": self.address_v4, "address_v6": self.address_v6,
               "expires_at": self.expires_at.unix_timestamp()})
    }
}

/// A device just enrolled: the device, its wg-quick file and, when the server generated the key, the private key
/// (in this answer only: it is not stored anywhere).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    #[serde(flatten)]
    pub device: Device,
    pub config: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Networks

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NetworkInput {
    pub name: String,
    /// IPv4 pool in CIDR form; its host bits must be zero. Sized for the organisation's seats (a /19 for 4,500).
    pub ipv4_cidr: String,
    #[serde(default)]
    pub ipv6_cidr: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub require_approval: bool,
    /// 1 to 3650; 90 when absent.
    #[serde(default)]
    pub default_expiry_days: Option<i64>,
}

/// What may change in a network once it exists (its pools may not: devices hold addresses in them).
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NetworkUpdate {
    pub name: String,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub require_approval: bool,
    #[serde(default)]
    pub default_expiry_days: Option<i64>,
}

fn parse_name(errors: &mut FieldErrors, field: &str, s: &str, max: usize) -> Option<String> {
    errors.check(field, Text::parse(s, max)).map(Text::into_string)
}

fn parse_dns(errors: &mut FieldErrors, dns: &[String]) -> Vec<String> {
    if dns.len() > 4 {
        errors.add("dns", "too-long");
    }
    let mut out = Vec::new();
    for (i, s) in dns.iter().enumerate() {
        match s.trim().parse::<IpAddr>() {
            Ok(a) => out.push(a.to_string()),
            Err(_) => errors.add(&format!("dns[{i}]"), codes::FORMAT),
        }
    }
    out
}

fn parse_expiry(errors: &mut FieldErrors, days: Option<i64>) -> i64 {
    let d = days.unwrap_or(90);
    if !(1..=3650).contains(&d) {
        errors.add("default_expiry_days", "out-of-range");
    }
    d
}

/// The organisation's seat limit for remote access, if it has one.
async fn seat_limit(db: &Db, org: OrgId) -> Result<Option<i64>> {
    let subs = catalogue::subscriptions(db, org).await?;
    Ok(subs
        .iter()
        .find(|v| v.subscription.service_key == Service::RemoteAccess.key())
        .and_then(|v| v.quotas.iter().find(|q| q.quota_key == SEATS))
        .and_then(|q| q.limit_value))
}

pub async fn networks(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<Network>> {
    require_member(p, org)?;
    Ok(store::networks(db, org).await?.into_iter().map(Network::from_row).collect())
}

pub async fn network(db: &Db, p: &Principal, org: OrgId, id: NetworkId) -> Result<Network> {
    require_member(p, org)?;
    store::network(db, org, id).await?.map(Network::from_row).ok_or(Error::NotFound)
}

/// Maps a uniqueness refusal to a field error; anything else passes through.
fn taken(e: DbError, field: &str) -> Error {
    match e {
        DbError::Conflict(_) => FieldErrors::one(field, "taken"),
        other => other.into(),
    }
}

pub async fn create_network(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &NetworkInput) -> Result<Network> {
    require_admin(p, org)?;
    let mut errors = FieldErrors::new();
    let name = parse_name(&mut errors, "name", &input.name, 80);
    let v4 = match Cidr::parse(&input.ipv4_cidr) {
        Ok(c) if c.is_v4() => Some(c),
        Ok(_) => {
            errors.add("ipv4_cidr", codes::CIDR_FAMILY);
            None
        }
        Err(code) => {
            errors.add("ipv4_cidr", if input.ipv4_cidr.trim().is_empty() { "required" } else { code });
            None
        }
    };
    let v6 = match input.ipv6_cidr.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match Cidr::parse(s) {
            Ok(c) if !c.is_v4() => Some(c),
            Ok(_) => {
                errors.add("ipv6_cidr", codes::CIDR_FAMILY);
                None
            }
            Err(code) => {
                errors.add("ipv6_cidr", code);
                None
            }
        },
    };
    let dns = parse_dns(&mut errors, &input.dns);
    let days = parse_expiry(&mut errors, input.default_expiry_days);
    // A pool must hold every seat the organisation has (any employee may enrol in any of its networks).
    if let Some(v4) = &v4 {
        let limit = u64::try_from(seat_limit(db, org).await?.unwrap_or(0)).unwrap_or(0).max(1);
        if v4.device_capacity() < limit {
            errors.add("ipv4_cidr", codes::POOL_TOO_SMALL);
        }
        if let Some(v6) = &v6
            && v6.device_capacity() < limit
        {
            errors.add("ipv6_cidr", codes::POOL_TOO_SMALL);
        }
    }
    let mut tx = db.begin().await?;
    if !store::lock_org(&mut tx, org).await? {
        return Err(Error::NotFound);
    }
    // Overlaps are reported with the other complaints, so the admin sees everything wrong at once.
    for (_, o4, o6) in store::org_pools(&mut tx, org).await? {
        if let (Some(v4), Ok(o4)) = (&v4, Cidr::parse(&o4))
            && o4.overlaps(v4)
            && !errors.0.iter().any(|e| e.field == "ipv4_cidr" && e.code == codes::CIDR_OVERLAP)
        {
            errors.add("ipv4_cidr", codes::CIDR_OVERLAP);
        }
        if let (Some(v6), Some(Ok(o6))) = (&v6, o6.as_deref().map(Cidr::parse))
            && o6.overlaps(v6)
            && !errors.0.iter().any(|e| e.field == "ipv6_cidr" && e.code == codes::CIDR_OVERLAP)
        {
            errors.add("ipv6_cidr", codes::CIDR_OVERLAP);
        }
    }
    let (Some(name), Some(v4)) = (name, v4) else { return Err(Error::Invalid(errors)) };
    errors.into_result()?;
    let now = clock::now();
    let row = NetworkRow {
        id: NetworkId::new(),
        org_id: org,
        name,
        ipv4_cidr: v4.to_string(),
        ipv6_cidr: v6.map(|c| c.to_string()),
        dns: dns.join(" "),
        require_approval: input.require_approval,
        default_expiry_days: days,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    store::insert_network(&mut tx, &row).await.map_err(|e| taken(e, "name"))?;
    let n = Network::from_row(row);
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.network.create", entity: "vpn_network", entity_id: n.id.to_string(),
        before: None, after: Some(network_json(&n)),
    }).await?;
    tx.commit().await?;
    Ok(n)
}

fn network_json(n: &Network) -> serde_json::Value {
    json!({"name": n.name, "ipv4_cidr": n.ipv4_cidr, "ipv6_cidr": n.ipv6_cidr, "dns": n.dns,
           "require_approval": n.require_approval, "default_expiry_days": n.default_expiry_days})
}

pub async fn update_network(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    id: NetworkId,
    input: &NetworkUpdate,
) -> Result<Network> {
    require_admin(p, org)?;
    let before = store::network(db, org, id).await?.ok_or(Error::NotFound)?;
    let mut errors = FieldErrors::new();
    let name = parse_name(&mut errors, "name", &input.name, 80);
    let dns = parse_dns(&mut errors, &input.dns);
    let days = parse_expiry(&mut errors, input.default_expiry_days);
    let Some(name) = name else { return Err(Error::Invalid(errors)) };
    errors.into_result()?;
    let after = NetworkRow {
        name,
        dns: dns.join(" "),
        require_approval: input.require_approval,
        default_expiry_days: days,
        updated_at: clock::now(),
        ..before.clone()
    };
    let mut tx = db.begin().await?;
    store::update_network(&mut tx, &after).await.map_err(|e| taken(e, "name"))?;
    let (b, a) = (Network::from_row(before), Network::from_row(after));
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.network.update", entity: "vpn_network", entity_id: id.to_string(),
        before: Some(network_json(&b)), after: Some(network_json(&a)),
    }).await?;
    tx.commit().await?;
    Ok(a)
}

/// Removes a network that no live device uses, with its gateways and groups.
pub async fn delete_network(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: NetworkId) -> Result<()> {
    require_admin(p, org)?;
    let before = store::network(db, org, id).await?.ok_or(Error::NotFound)?;
    if store::live_device_count(db, org, id).await? > 0 {
        return Err(Error::Conflict("network-in-use"));
    }
    let mut tx = db.begin().await?;
    store::delete_network(&mut tx, org, id).await?;
    let n = Network::from_row(before);
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.network.delete", entity: "vpn_network", entity_id: id.to_string(),
        before: Some(network_json(&n)), after: None,
    }).await?;
    tx.commit().await?;
    hub::notify(id);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Gateways

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct GatewayInput {
    pub name: String,
    /// Public host name or IP address.
    pub endpoint: String,
    /// UDP port, 51820 when absent.
    #[serde(default)]
    pub port: Option<i64>,
    /// The gateway's WireGuard public key (base64).
    pub public_key: String,
    /// Internal prefixes behind the gateway (the devices' default access when the network has no access group).
    #[serde(default)]
    pub routes: Vec<String>,
}

struct GatewayFields {
    name: String,
    endpoint: String,
    port: i64,
    public_key: WgKey,
    routes: Vec<Cidr>,
}

fn parse_gateway(input: &GatewayInput) -> Result<GatewayFields> {
    let mut errors = FieldErrors::new();
    let name = parse_name(&mut errors, "name", &input.name, 80);
    let endpoint = match parse_endpoint_host(&input.endpoint) {
        Ok(e) => Some(e),
        Err(code) => {
            errors.add("endpoint", code);
            None
        }
    };
    let port = input.port.unwrap_or(51820);
    if !(1..=65535).contains(&port) {
        errors.add("port", "out-of-range");
    }
    let key = match WgKey::parse(&input.public_key) {
        Ok(k) => Some(k),
        Err(code) => {
            errors.add("public_key", if input.public_key.trim().is_empty() { "required" } else { code });
            None
        }
    };
    if input.routes.len() > 64 {
        errors.add("routes", "too-long");
    }
    let routes = parse_cidrs("routes", &input.routes, &mut errors);
    match (name, endpoint, key) {
        (Some(name), Some(endpoint), Some(public_key)) if errors.is_empty() => {
            Ok(GatewayFields { name, endpoint, port, public_key, routes })
        }
        _ => Err(Error::Invalid(errors)),
    }
}

fn new_gateway_token() -> (String, String) {
    let t = format!("gw_{}", agilekit_kernel::identity::session::new_secret());
    let h = agilekit_kernel::identity::session::hash_secret(&t);
    (t, h)
}

fn gateway_json(g: &Gateway) -> serde_json::Value {
    json!({"name": g.name, "endpoint": g.endpoint, "port": g.port, "public_key": g.public_key, "routes": g.routes})
}

pub async fn gateways(db: &Db, p: &Principal, org: OrgId, network: Option<NetworkId>) -> Result<Vec<Gateway>> {
    require_view(p, org)?;
    if let Some(n) = network {
        store::network(db, org, n).await?.ok_or(Error::NotFound)?;
    }
    Ok(store::gateways(db, org, network).await?.iter().map(Gateway::from_row).collect())
}

pub async fn create_gateway(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    network: NetworkId,
    input: &GatewayInput,
) -> Result<NewGateway> {
    require_admin(p, org)?;
    store::network(db, org, network).await?.ok_or(Error::NotFound)?;
    let f = parse_gateway(input)?;
    let (token, hash) = new_gateway_token();
    let row = GatewayRow {
        id: GatewayId::new(),
        org_id: org,
        network_id: network,
        name: f.name,
        endpoint: f.endpoint,
        port: f.port,
        public_key: f.public_key.to_base64(),
        routes: f.routes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        token_hash: hash,
        last_seen_at: None,
        created_at: clock::now(),
    };
    let mut tx = db.begin().await?;
    store::insert_gateway(&mut tx, &row).await.map_err(|e| taken(e, "name"))?;
    // Its routes are the default access of devices in a network without groups.
    store::bump_version(&mut tx, org, network).await?;
    let g = Gateway::from_row(&row);
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.gateway.create", entity: "vpn_gateway", entity_id: g.id.to_string(),
        before: None, after: Some(gateway_json(&g)),
    }).await?;
    tx.commit().await?;
    hub::notify(network);
    Ok(NewGateway { gateway: g, token })
}

pub async fn update_gateway(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    network: NetworkId,
    id: GatewayId,
    input: &GatewayInput,
) -> Result<Gateway> {
    require_admin(p, org)?;
    let before = store::gateway(db, org, id).await?.filter(|g| g.network_id == network).ok_or(Error::NotFound)?;
    let f = parse_gateway(input)?;
    let after = GatewayRow {
        name: f.name,
        endpoint: f.endpoint,
        port: f.port,
        public_key: f.public_key.to_base64(),
        routes: f.routes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        ..before.clone()
    };
    let mut tx = db.begin().await?;
    store::update_gateway(&mut tx, &after).await.map_err(|e| taken(e, "name"))?;
    store::bump_version(&mut tx, org, network).await?;
    let (b, a) = (Gateway::from_row(&before), Gateway::from_row(&after));
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.gateway.update", entity: "vpn_gateway", entity_id: id.to_string(),
        before: Some(gateway_json(&b)), after: Some(gateway_json(&a)),
    }).await?;
    tx.commit().await?;
    hub::notify(network);
    Ok(a)
}

/// Issues a new token; the old one stops working at once.
pub async fn rotate_gateway_token(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    network: NetworkId,
    id: GatewayId,
) -> Result<NewGateway> {
    require_admin(p, org)?;
    let row = store::gateway(db, org, id).await?.filter(|g| g.network_id == network).ok_or(Error::NotFound)?;
    let (token, hash) = new_gateway_token();
    let mut tx = db.begin().await?;
    store::set_gateway_token(&mut tx, org, id, &hash).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.gateway.token", entity: "vpn_gateway", entity_id: id.to_string(),
        before: None, after: None,
    }).await?;
    tx.commit().await?;
    Ok(NewGateway { gateway: Gateway::from_row(&row), token })
}

pub async fn delete_gateway(db: &Db, p: &Principal, actor: &Actor, org: OrgId, network: NetworkId, id: GatewayId) -> Result<()> {
    require_admin(p, org)?;
    let row = store::gateway(db, org, id).await?.filter(|g| g.network_id == network).ok_or(Error::NotFound)?;
    let mut tx = db.begin().await?;
    store::delete_gateway(&mut tx, org, id).await?;
    store::bump_version(&mut tx, org, network).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.gateway.delete", entity: "vpn_gateway", entity_id: id.to_string(),
        before: Some(gateway_json(&Gateway::from_row(&row))), after: None,
    }).await?;
    tx.commit().await?;
    hub::notify(network);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Access groups

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AccessGroupInput {
    pub name: String,
    /// Roles in the organisation (`employee`, `manager`, `hr`, …).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Account ids of members of the organisation.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Internal prefixes the group may reach.
    #[serde(default)]
    pub allow: Vec<String>,
}

async fn parse_group(db: &Db, org: OrgId, input: &AccessGroupInput) -> Result<(String, Vec<String>, Vec<AccountId>, Vec<String>)> {
    let mut errors = FieldErrors::new();
    let name = parse_name(&mut errors, "name", &input.name, 80);
    let mut roles = BTreeSet::new();
    for (i, r) in input.roles.iter().enumerate() {
        match Role::parse(r.trim()) {
            Some(Role::PlatformAdmin) | None => errors.add(&format!("roles[{i}]"), codes::FORMAT),
            Some(role) => {
                roles.insert(role.as_str().to_owned());
            }
        }
    }
    let mut accounts = Vec::new();
    for (i, a) in input.accounts.iter().enumerate() {
        match a.trim().parse::<AccountId>() {
            Ok(id) => {
                if !accounts.contains(&id) {
                    accounts.push(id);
                }
            }
            Err(_) => errors.add(&format!("accounts[{i}]"), codes::FORMAT),
        }
    }
    let members = store::members_among(db, org, &accounts).await?;
    for (i, a) in input.accounts.iter().enumerate() {
        if let Ok(id) = a.trim().parse::<AccountId>()
            && !members.contains(&id)
        {
            errors.add(&format!("accounts[{i}]"), "not-found");
        }
    }
    if roles.is_empty() && accounts.is_empty() && errors.is_empty() {
        errors.add("roles", "required");
    }
    if input.allow.is_empty() {
        errors.add("allow", "required");
    }
    if input.allow.len() > 64 {
        errors.add("allow", "too-long");
    }
    let allow: BTreeSet<String> = parse_cidrs("allow", &input.allow, &mut errors).iter().map(ToString::to_string).collect();
    match name {
        Some(n) if errors.is_empty() => Ok((n, roles.into_iter().collect(), accounts, allow.into_iter().collect())),
        _ => Err(Error::Invalid(errors)),
    }
}

fn group_json(g: &Group) -> serde_json::Value {
    json!({"name": g.row.name, "roles": g.roles, "accounts": g.accounts, "allow": g.allow})
}

pub async fn access_groups(db: &Db, p: &Principal, org: OrgId, network: NetworkId) -> Result<Vec<AccessGroup>> {
    require_view(p, org)?;
    store::network(db, org, network).await?.ok_or(Error::NotFound)?;
    Ok(store::groups(db, org, network).await?.iter().map(AccessGroup::from).collect())
}

pub async fn save_access_group(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    network: NetworkId,
    id: Option<AccessGroupId>,
    input: &AccessGroupInput,
) -> Result<AccessGroup> {
    require_admin(p, org)?;
    store::network(db, org, network).await?.ok_or(Error::NotFound)?;
    let before = match id {
        Some(id) => Some(store::group(db, org, network, id).await?.ok_or(Error::NotFound)?),
        None => None,
    };
    let (name, roles, accounts, allow) = parse_group(db, org, input).await?;
    let now = clock::now();
    let row = match &before {
        Some(b) => GroupRow { name, updated_at: now, ..b.row.clone() },
        None => GroupRow { id: AccessGroupId::new(), org_id: org, network_id: network, name, created_at: now, updated_at: now },
    };
    let g = Group { row, roles, accounts, allow };
    let mut tx = db.begin().await?;
    store::save_group(&mut tx, &g, before.is_none()).await.map_err(|e| taken(e, "name"))?;
    store::bump_version(&mut tx, org, network).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org),
        action: if before.is_some() { "vpn.group.update" } else { "vpn.group.create" },
        entity: "vpn_access_group",
        entity_id: g.row.id.to_string(),
        before: before.as_ref().map(group_json),
        after: Some(group_json(&g)),
    }).await?;
    tx.commit().await?;
    hub::notify(network);
    Ok(AccessGroup::from(&g))
}

pub async fn delete_access_group(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    network: NetworkId,
    id: AccessGroupId,
) -> Result<()> {
    require_admin(p, org)?;
    let g = store::group(db, org, network, id).await?.ok_or(Error::NotFound)?;
    let mut tx = db.begin().await?;
    store::delete_group(&mut tx, org, id).await?;
    store::bump_version(&mut tx, org, network).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.group.delete", entity: "vpn_access_group", entity_id: id.to_string(),
        before: Some(group_json(&g)), after: None,
    }).await?;
    tx.commit().await?;
    hub::notify(network);
    Ok(())
}

/// What one account's devices may reach in a network: the union of the allowed prefixes of the groups it is in
/// (by role or by name); when the network has no group at all, everything its gateways route.
/// `roles` are the account's roles in the organisation.
fn access_of(account: AccountId, roles: &[String], groups: &[Group], gateways: &[GatewayRow]) -> Vec<String> {
    let mut out = BTreeSet::new();
    if groups.is_empty() {
        for g in gateways {
            out.extend(split(&g.routes));
        }
    } else {
        for g in groups {
            let by_role = roles.iter().any(|r| g.roles.contains(r));
            if by_role || g.accounts.contains(&account) {
                out.extend(g.allow.iter().cloned());
            }
        }
    }
    out.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Devices

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EnrolInput {
    pub name: String,
    /// The network to join; may be left out when the organisation has only one.
    #[serde(default)]
    pub network_id: Option<String>,
    /// The device's WireGuard public key (base64). The private key stays on the device.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Instead of a public key: the server generates the pair and shows the private key in this answer only.
    #[serde(default)]
    pub generate_key: bool,
}

/// Devices the caller may see: their own; with `all`, every device of the organisation (admins and HR).
pub async fn devices(db: &Db, p: &Principal, org: OrgId, all: bool) -> Result<Vec<Device>> {
    let now = clock::now();
    let rows = if all {
        require_view(p, org)?;
        store::devices(db, org).await?
    } else {
        require_member(p, org)?;
        store::devices_of(db, org, p.id()).await?
    };
    Ok(rows.into_iter().map(|r| Device::from_row(r, now)).collect())
}

/// A device, for its owner and for those who may see every device of the organisation.
pub async fn device(db: &Db, p: &Principal, org: OrgId, id: DeviceId) -> Result<Device> {
    require_member(p, org)?;
    let d = store::device(db, org, id).await?.ok_or(Error::NotFound)?;
    if d.account_id != p.id() && !p.can_view_org(org) {
        return Err(Error::NotFound);
    }
    Ok(Device::from_row(d, clock::now()))
}

/// The owner, or an administrator of the organisation, may change a device; others do not learn it exists.
fn may_manage(p: &Principal, org: OrgId, d: &DeviceRow) -> Result<()> {
    if d.account_id == p.id() || p.can_admin_org(org) {
        Ok(())
    } else if p.can_view_org(org) {
        Err(Error::Forbidden)
    } else {
        Err(Error::NotFound)
    }
}

/// The wg-quick file of a device (without its private key, which the server never has).
pub async fn device_config(db: &Db, p: &Principal, org: OrgId, id: DeviceId) -> Result<String> {
    let d = device(db, p, org, id).await?;
    render_device_config(db, org, &d, None).await
}

async fn render_device_config(db: &Db, org: OrgId, d: &Device, private_key: Option<&WgKey>) -> Result<String> {
    let net = store::network(db, org, d.network_id).await?.ok_or(Error::NotFound)?;
    let gws = store::network_gateways(db, d.network_id).await?;
    let groups = store::groups(db, org, d.network_id).await?;
    let roles = store::account_roles(db, org, d.account_id).await?;
    let mut allowed = access_of(d.account_id, &roles, &groups, &gws);
    // The gateway's own tunnel address, so the device can reach it (a DNS resolver there, a ping to check).
    if let Some((v4, v6)) = pools(&net) {
        allowed.extend(v4.nth(1).map(|a| format!("{a}/32")));
        if let Some(v6) = v6 {
            allowed.extend(v6.nth(1).map(|a| format!("{a}/128")));
        }
    }
    let dns = split(&net.dns);
    let (gw_key, host, port) = match gws.first() {
        Some(g) => (g.public_key.clone(), g.endpoint.clone(), u16::try_from(g.port).unwrap_or(51820)),
        // No gateway yet: the file says so where the peer would be.
        None => ("<no gateway registered yet>".to_owned(), "<no gateway>".to_owned(), 51820),
    };
    Ok(render_config(&ConfigInput {
        private_key,
        address_v4: &d.address_v4,
        address_v6: d.address_v6.as_deref(),
        dns: &dns,
        gateway_public_key: &gw_key,
        endpoint_host: &host,
        endpoint_port: port,
        allowed_ips: &allowed,
        device_name: &d.name,
    }))
}

/// Enrols one of the caller's devices: needs the organisation's remote-access entitlement and a free seat, which
/// it takes in the same transaction as the address. Nothing is written when any check fails.
pub async fn enrol(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &EnrolInput) -> Result<Enrolled> {
    require_member(p, org)?;
    let mut errors = FieldErrors::new();
    let name = parse_name(&mut errors, "name", &input.name, 80);
    let pasted = input.public_key.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let mut pair = None;
    let public = match (pasted, input.generate_key) {
        (Some(_), true) => {
            errors.add("public_key", "key-choice");
            None
        }
        (Some(s), false) => match WgKey::parse(s) {
            Ok(k) => Some(k),
            Err(code) => {
                errors.add("public_key", code);
                None
            }
        },
        (None, true) => {
            let kp = KeyPair::generate();
            let public = kp.public;
            pair = Some(kp);
            Some(public)
        }
        (None, false) => {
            errors.add("public_key", "required");
            None
        }
    };
    let nets = store::networks(db, org).await?;
    let net = match input.network_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => match s.parse::<NetworkId>().ok().and_then(|id| nets.iter().find(|n| n.id == id)) {
            Some(n) => Some(n.clone()),
            None => {
                errors.add("network_id", "not-found");
                None
            }
        },
        None if nets.len() == 1 => nets.first().cloned(),
        None => {
            errors.add("network_id", if nets.is_empty() { "not-found" } else { "required" });
            None
        }
    };
    let (Some(name), Some(public), Some(net)) = (name, public, net) else { return Err(Error::Invalid(errors)) };
    errors.into_result()?;
    // The kernel decides whether this person may use the service here.
    if catalogue::entitlement(db, p.id(), org, Service::RemoteAccess).await?.is_err() {
        return Err(Error::Forbidden);
    }
    let (v4, v6) = pools(&net).ok_or_else(|| Error::Internal("stored pool does not parse".into()))?;
    let now = clock::now();
    let state = if net.require_approval { DeviceState::Pending } else { DeviceState::Active };
    let mut tx = db.begin().await?;
    // First: the network's row lock, so that enrolments in one pool take their addresses one after another.
    store::bump_version(&mut tx, org, net.id).await?;
    if store::live_key_taken(&mut tx, net.id, &public.to_base64()).await? {
        return Err(FieldErrors::one("public_key", codes::KEY_IN_USE));
    }
    let slot = store::lowest_free_slot(&mut tx, net.id).await?;
    let slot_u = u64::try_from(slot).unwrap_or(0);
    if slot_u < 2 || slot_u > last_slot(&v4, v6.as_ref()) {
        return Err(FieldErrors::one("network_id", codes::POOL_EXHAUSTED));
    }
    let (Some(a4), a6) = (v4.nth(slot_u), v6.as_ref().map(|c| c.nth(slot_u))) else {
        return Err(FieldErrors::one("network_id", codes::POOL_EXHAUSTED));
    };
    catalogue::consume_in(&mut tx, org, Service::RemoteAccess, SEATS, 1).await?;
    let row = DeviceRow {
        id: DeviceId::new(),
        org_id: org,
        network_id: net.id,
        account_id: p.id(),
        name,
        public_key: public.to_base64(),
        slot,
        address_v4: a4.to_string(),
        address_v6: a6.flatten().map(|a| a.to_string()),
        state: state.as_str().to_owned(),
        expires_at: clock::stamp(now + time::Duration::days(net.default_expiry_days)),
        created_at: now,
        updated_at: now,
        last_handshake_at: None,
        rx_bytes: 0,
        tx_bytes: 0,
        endpoint: None,
        owner_email: p.account.email.clone(),
        owner_name: p.account.display_name.clone(),
        network_name: net.name.clone(),
    };
    store::insert_device(&mut tx, &row).await.map_err(|e| match e {
        DbError::Conflict(_) => FieldErrors::one("public_key", codes::KEY_IN_USE),
        other => other.into(),
    })?;
    let d = Device::from_row(row, now);
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.device.enrol", entity: "vpn_device", entity_id: d.id.to_string(),
        before: None, after: Some(json!({"generated_key": pair.is_some(), "device": d.audit_json()})),
    }).await?;
    tx.commit().await?;
    hub::notify(net.id);
    let private = pair.as_ref().map(|k| &k.private);
    let config = render_device_config(db, org, &d, private).await?;
    Ok(Enrolled { device: d, config, private_key: private.map(ToString::to_string) })
}

/// Why a device's state changed, for the audit log and the owner's mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    ByPerson,
    Expired,
    OwnerGone,
}

/// Ends a live device (revoked or expired), gives its seat back and takes it off the gateways, in one transaction.
async fn end_device(db: &Db, actor: &Actor, by: Option<AccountId>, org: OrgId, id: DeviceId, reason: Reason) -> Result<Option<Device>> {
    let mut tx = db.begin().await?;
    let Some(before) = store::device_in(&mut tx, org, id).await? else { return Err(Error::NotFound) };
    let to = if reason == Reason::Expired { DeviceState::Expired } else { DeviceState::Revoked };
    let now = clock::now();
    if !store::set_state(&mut tx, org, id, &["pending", "active"], to.as_str(), now).await? {
        // Already over: nothing to do, nothing recorded.
        return Ok(None);
    }
    catalogue::release_in(&mut tx, org, Service::RemoteAccess, SEATS, 1).await?;
    store::bump_version(&mut tx, org, before.network_id).await?;
    let b = Device::from_row(before.clone(), now);
    let after = Device { state: to, updated_at: now, connected: false, ..b.clone() };
    let action = match reason {
        Reason::ByPerson => "vpn.device.revoke",
        Reason::Expired => "vpn.device.expire",
        Reason::OwnerGone => "vpn.device.revoke-owner-gone",
    };
    audit::record(&mut tx, actor, Change {
        org: Some(org), action, entity: "vpn_device", entity_id: id.to_string(),
        before: Some(b.audit_json()), after: Some(after.audit_json()),
    }).await?;
    // The owner hears of it unless they did it themselves.
    if by != Some(before.account_id) && reason != Reason::OwnerGone {
        let (it, en) = match reason {
            Reason::Expired => ("è scaduto", "has expired"),
            _ => ("è stato revocato da un amministratore", "was revoked by an administrator"),
        };
        let text = format!(
            "Il dispositivo VPN \"{n}\" {it}: non può più collegarsi. Per continuare a lavorare da remoto registralo di nuovo.\n\n\
             Your VPN device \"{n}\" {en}: it can no longer connect. Enrol it again to keep working remotely.",
            n = before.name
        );
        mail::queue(&mut tx, Some(org), &Mail { to: before.owner_email.clone(), subject: "agilekit VPN".into(), text }).await?;
    }
    tx.commit().await?;
    hub::notify(before.network_id);
    Ok(Some(after))
}

/// Revokes a device (its owner or an administrator): it leaves the gateways at once and its seat is free again.
/// Revoking what is already over changes nothing.
pub async fn revoke(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: DeviceId) -> Result<Device> {
    require_member(p, org)?;
    let d = store::device(db, org, id).await?.ok_or(Error::NotFound)?;
    may_manage(p, org, &d)?;
    match end_device(db, actor, Some(p.id()), org, id, Reason::ByPerson).await? {
        Some(after) => Ok(after),
        None => device(db, p, org, id).await,
    }
}

/// An administrator lets a pending device in.
pub async fn approve(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: DeviceId) -> Result<Device> {
    require_admin(p, org)?;
    let mut tx = db.begin().await?;
    let before = store::device_in(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    let now = clock::now();
    if !store::set_state(&mut tx, org, id, &["pending"], "active", now).await? {
        return Err(Error::Conflict("not-pending"));
    }
    store::bump_version(&mut tx, org, before.network_id).await?;
    let b = Device::from_row(before.clone(), now);
    let after = Device { state: DeviceState::Active, updated_at: now, ..b.clone() };
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.device.approve", entity: "vpn_device", entity_id: id.to_string(),
        before: Some(b.audit_json()), after: Some(after.audit_json()),
    }).await?;
    let text = format!(
        "Il dispositivo VPN \"{n}\" è stato approvato: puoi collegarti.\n\nYour VPN device \"{n}\" was approved: you can connect now.",
        n = before.name
    );
    mail::queue(&mut tx, Some(org), &Mail { to: before.owner_email.clone(), subject: "agilekit VPN".into(), text }).await?;
    tx.commit().await?;
    hub::notify(before.network_id);
    Ok(after)
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RenameInput {
    pub name: String,
}

pub async fn rename(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: DeviceId, input: &RenameInput) -> Result<Device> {
    require_member(p, org)?;
    let before = store::device(db, org, id).await?.ok_or(Error::NotFound)?;
    may_manage(p, org, &before)?;
    let name = Text::parse(&input.name, 80).map_err(|e| FieldErrors::one("name", e.code()))?.into_string();
    let now = clock::now();
    let mut tx = db.begin().await?;
    store::rename_device(&mut tx, org, id, &name, now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.device.rename", entity: "vpn_device", entity_id: id.to_string(),
        before: Some(json!({"name": before.name})), after: Some(json!({"name": name})),
    }).await?;
    tx.commit().await?;
    let d = Device::from_row(before, now);
    Ok(Device { name, updated_at: now, ..d })
}

/// Pushes a live device's expiry to the network's term from now (its owner, or an administrator).
pub async fn renew(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: DeviceId) -> Result<Device> {
    require_member(p, org)?;
    let before = store::device(db, org, id).await?.ok_or(Error::NotFound)?;
    may_manage(p, org, &before)?;
    if !DeviceState::parse(&before.state).is_some_and(DeviceState::is_live) {
        return Err(Error::Conflict("device-not-live"));
    }
    let net = store::network(db, org, before.network_id).await?.ok_or(Error::NotFound)?;
    let now = clock::now();
    let until = clock::stamp(now + time::Duration::days(net.default_expiry_days));
    let mut tx = db.begin().await?;
    store::set_expiry(&mut tx, org, id, until, now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "vpn.device.renew", entity: "vpn_device", entity_id: id.to_string(),
        before: Some(json!({"expires_at": before.expires_at.unix_timestamp()})),
        after: Some(json!({"expires_at": until.unix_timestamp()})),
    }).await?;
    tx.commit().await?;
    let d = Device::from_row(before, now);
    Ok(Device { expires_at: until, updated_at: now, ..d })
}

/// The sweep: ends devices whose term is over (expired) and devices whose owner left the organisation or was
/// disabled (revoked), each in its own transaction, giving their seats back. Safe to run on several nodes at once:
/// a device already ended by another is skipped. Returns how many it ended.
pub async fn sweep(db: &Db) -> Result<usize> {
    let mut n = 0;
    loop {
        let due = store::due_to_expire(db, clock::now(), 200).await?;
        if due.is_empty() {
            break;
        }
        let mut ended = 0;
        for (org, id) in &due {
            if end_device(db, &Actor::system(), None, *org, *id, Reason::Expired).await?.is_some() {
                ended += 1;
            }
        }
        n += ended;
        if ended == 0 || due.len() < 200 {
            break;
        }
    }
    for (org, id) in store::orphaned(db, 1000).await? {
        if end_device(db, &Actor::system(), None, org, id, Reason::OwnerGone).await?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// How often the server runs [`sweep`].
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------------------------
// The gateway's side

/// One peer of the desired set.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Peer {
    pub public_key: String,
    /// The device's tunnel addresses (`10.8.0.2/32`, `fd00:8::2/128`).
    pub allowed_ips: Vec<String>,
}

/// What one peer may reach behind the gateway (enforced by the agent's firewall rules).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerAccess {
    pub peer: String,
    pub allow: Vec<String>,
}

/// The gateway's desired state.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayConfig {
    pub version: i64,
    pub gateway_id: GatewayId,
    pub listen_port: u16,
    /// The interface's addresses: the first host of each pool with the pool's prefix.
    pub addresses: Vec<String>,
    pub peers: Vec<Peer>,
    pub access: Vec<PeerAccess>,
    /// How long the server holds a long-poll with no change.
    pub poll_secs: u64,
}

/// The gateway behind a bearer token, if the token is one; it is marked as seen.
pub async fn authenticate_gateway(db: &Db, bearer: &str) -> Result<Option<GatewayRow>> {
    if !bearer.starts_with("gw_") || bearer.len() > 200 {
        return Ok(None);
    }
    let h = agilekit_kernel::identity::session::hash_secret(bearer);
    let g = store::gateway_by_token(db, &h).await?;
    if let Some(g) = &g {
        store::touch_gateway(db, g.id, clock::now()).await?;
    }
    Ok(g)
}

/// Waits until the network's version differs from `after` or `wait` has passed, and returns the desired state.
/// A change made on this node wakes the wait at once; one made on another node is seen within half a second.
pub async fn gateway_config(db: &Db, gw: &GatewayRow, after: Option<i64>, wait: Duration) -> Result<GatewayConfig> {
    if let Some(after) = after {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notify = hub::notifier(gw.network_id);
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let v = store::version(db, gw.network_id).await?.ok_or(Error::NotFound)?;
            let now = tokio::time::Instant::now();
            if v != after || now >= deadline {
                break;
            }
            let nap = (deadline - now).min(Duration::from_millis(500));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }
    // The version is read before the peers: a change in between is sent again at the next poll, never lost.
    let net = store::network_by_id(db, gw.network_id).await?.ok_or(Error::NotFound)?;
    let (v4, v6) = pools(&net).ok_or_else(|| Error::Internal("stored pool does not parse".into()))?;
    let peers = store::active_peers(db, net.id).await?;
    let groups = store::groups(db, net.org_id, net.id).await?;
    let gws = store::network_gateways(db, net.id).await?;
    let mut roles: std::collections::HashMap<AccountId, Vec<String>> = std::collections::HashMap::new();
    for (a, r) in store::org_roles(db, net.org_id).await? {
        roles.entry(a).or_default().push(r);
    }
    let mut out_peers = Vec::with_capacity(peers.len());
    let mut access = Vec::with_capacity(peers.len());
    for (key, a4, a6, account) in peers {
        let mut ips = vec![format!("{a4}/32")];
        ips.extend(a6.map(|a| format!("{a}/128")));
        let mine = roles.get(&account).map(Vec::as_slice).unwrap_or_default();
        access.push(PeerAccess { peer: key.clone(), allow: access_of(account, mine, &groups, &gws) });
        out_peers.push(Peer { public_key: key, allowed_ips: ips });
    }
    let mut addresses: Vec<String> = v4.gateway_address().into_iter().collect();
    addresses.extend(v6.and_then(|c| c.gateway_address()));
    Ok(GatewayConfig {
        version: net.version,
        gateway_id: gw.id,
        listen_port: u16::try_from(gw.port).unwrap_or(51820),
        addresses,
        peers: out_peers,
        access,
        poll_secs: crate::model::POLL_SECS,
    })
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PeerReport {
    pub public_key: String,
    /// Unix seconds of the last handshake; `null` or 0 when there was none. At most a day ahead of the server.
    #[serde(default)]
    pub last_handshake: Option<i64>,
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct StatusReport {
    pub peers: Vec<PeerReport>,
}

/// Stores what a gateway saw of its peers. Unknown keys (a peer revoked since) are ignored.
pub async fn gateway_status(db: &Db, gw: &GatewayRow, report: &StatusReport) -> Result<u64> {
    let mut errors = FieldErrors::new();
    let mut rows = Vec::with_capacity(report.peers.len());
    // A handshake is after 1970 and at most a day ahead of this server's clock (a gateway's may run a little
    // fast). Anything else is a broken report, and some of it (year -9999) no database column holds.
    let latest = clock::now().unix_timestamp() + 86_400;
    for (i, p) in report.peers.iter().enumerate() {
        let key = match WgKey::parse(&p.public_key) {
            Ok(k) => Some(k.to_base64()),
            Err(code) => {
                errors.add(&format!("peers[{i}].public_key"), code);
                None
            }
        };
        let last_handshake = match p.last_handshake {
            None | Some(0) => None,
            Some(s) if !(1..=latest).contains(&s) => {
                errors.add(&format!("peers[{i}].last_handshake"), "out-of-range");
                None
            }
            Some(s) => match OffsetDateTime::from_unix_timestamp(s) {
                Ok(t) => Some(clock::stamp(t)),
                Err(_) => {
                    errors.add(&format!("peers[{i}].last_handshake"), "out-of-range");
                    None
                }
            },
        };
        let endpoint = match p.endpoint.as_deref().map(str::trim) {
            None | Some("") | Some("(none)") => None,
            Some(e) if e.len() <= 64 && e.parse::<std::net::SocketAddr>().is_ok() => Some(e.to_owned()),
            Some(_) => {
                errors.add(&format!("peers[{i}].endpoint"), codes::FORMAT);
                None
            }
        };
        let Some(public_key) = key else { continue };
        rows.push(store::PeerStatus {
            public_key,
            last_handshake,
            rx_bytes: i64::try_from(p.rx_bytes).unwrap_or(i64::MAX),
            tx_bytes: i64::try_from(p.tx_bytes).unwrap_or(i64::MAX),
            endpoint,
        });
    }
    errors.into_result()?;
    Ok(store::record_status(db, gw.network_id, &rows).await?)
}

/// Demo data: the region's VPN network (a /19 for its 4,500 seats, with IPv6), open to every employee, and one
/// gateway. The gateway's key is a placeholder until an agent is installed: its administrator then sets the key the
/// agent prints (`agilekit gateway --show-public-key`) and issues a new token.
pub async fn seed_demo(db: &Db, p: &Principal, org: OrgId) -> Result<()> {
    let actor = Actor::system();
    let net = create_network(db, p, &actor, org, &NetworkInput {
        name: "Rete regionale (demo)".into(),
        ipv4_cidr: "10.64.0.0/19".into(),
        ipv6_cidr: Some("fd00:64::/64".into()),
        dns: vec!["10.10.0.53".into()],
        require_approval: false,
        default_expiry_days: Some(90),
    })
    .await?;
    create_gateway(db, p, &actor, org, net.id, &GatewayInput {
        name: "Concentratore Milano (demo)".into(),
        endpoint: "vpn.regione.example".into(),
        port: Some(51820),
        public_key: KeyPair::generate().public.to_base64(),
        routes: vec!["10.10.0.0/16".into()],
    })
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Status

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayStatus {
    pub id: GatewayId,
    pub network_id: NetworkId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<OffsetDateTime>,
    /// Seen within the last long-poll period and a margin (one minute).
    pub online: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VpnStatus {
    /// Live devices (pending or active).
    pub devices_live: i64,
    pub devices_pending: i64,
    /// Active devices with a handshake in the last 3 minutes.
    pub connected: i64,
    pub seats_limit: Option<i64>,
    pub seats_used: i64,
    pub gateways: Vec<GatewayStatus>,
    /// Every live device with its figures, connected ones first.
    pub devices: Vec<Device>,
}

pub async fn status(db: &Db, p: &Principal, org: OrgId) -> Result<VpnStatus> {
    require_view(p, org)?;
    let now = clock::now();
    let mut devices: Vec<Device> = store::devices(db, org)
        .await?
        .into_iter()
        .map(|r| Device::from_row(r, now))
        .filter(|d| d.state.is_live())
        .collect();
    devices.sort_by(|a, b| b.connected.cmp(&a.connected).then(b.last_handshake_at.cmp(&a.last_handshake_at)));
    let gateways = store::gateways(db, org, None)
        .await?
        .into_iter()
        .map(|g| GatewayStatus {
            online: g.last_seen_at.is_some_and(|t| now - t < time::Duration::minutes(1)),
            id: g.id,
            network_id: g.network_id,
            name: g.name,
            last_seen_at: g.last_seen_at,
        })
        .collect();
    let subs = catalogue::subscriptions(db, org).await?;
    let quota = subs
        .iter()
        .find(|v| v.subscription.service_key == Service::RemoteAccess.key())
        .and_then(|v| v.quotas.iter().find(|q| q.quota_key == SEATS));
    Ok(VpnStatus {
        devices_live: devices.len() as i64,
        devices_pending: devices.iter().filter(|d| d.state == DeviceState::Pending).count() as i64,
        connected: devices.iter().filter(|d| d.connected).count() as i64,
        seats_limit: quota.and_then(|q| q.limit_value),
        seats_used: quota.map_or(0, |q| q.used),
        gateways,
        devices,
    })
}

/// Prometheus lines for `/metrics`: peers by organisation and state, connected peers, gateways' last contact.
pub async fn metrics(db: &Db) -> String {
    use std::fmt::Write;
    let now = clock::now();
    let mut out = String::new();
    out.push_str("# HELP agilekit_vpn_peers VPN devices by organisation and state.\n# TYPE agilekit_vpn_peers gauge\n");
    for (org, state, n) in store::peer_counts(db).await.unwrap_or_default() {
        let _ = writeln!(out, "agilekit_vpn_peers{{org=\"{}\",state=\"{}\"}} {n}", label(&org), label(&state));
    }
    out.push_str(
        "# HELP agilekit_vpn_peers_connected VPN devices with a handshake in the last 3 minutes.\n# TYPE agilekit_vpn_peers_connected gauge\n",
    );
    for (org, n) in store::connected_counts(db, clock::stamp(now - crate::model::CONNECTED_WITHIN)).await.unwrap_or_default() {
        let _ = writeln!(out, "agilekit_vpn_peers_connected{{org=\"{}\"}} {n}", label(&org));
    }
    out.push_str(
        "# HELP agilekit_vpn_gateway_last_seen_seconds Seconds since each VPN gateway last called the server.\n# TYPE agilekit_vpn_gateway_last_seen_seconds gauge\n",
    );
    for (id, name, org, seen) in store::all_gateways(db).await.unwrap_or_default() {
        let secs = seen.map_or(-1.0, |t| (now - t).as_seconds_f64().max(0.0));
        let _ = writeln!(
            out,
            "agilekit_vpn_gateway_last_seen_seconds{{gateway=\"{id}\",name=\"{}\",org=\"{}\"}} {secs:.3}",
            label(&name),
            label(&org)
        );
    }
    out
}

/// A Prometheus label value: backslashes, quotes and line breaks escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(routes: &str) -> GatewayRow {
        GatewayRow {
            id: GatewayId::new(),
            org_id: OrgId::new(),
            network_id: NetworkId::new(),
            name: "gw".into(),
            endpoint: "192.0.2.1".into(),
            port: 51820,
            public_key: String::new(),
            routes: routes.into(),
            token_hash: String::new(),
            last_seen_at: None,
            created_at: clock::now(),
        }
    }

    fn group(roles: &[&str], accounts: &[AccountId], allow: &[&str]) -> Group {
        let now = clock::now();
        Group {
            row: GroupRow { id: AccessGroupId::new(), org_id: OrgId::new(), network_id: NetworkId::new(), name: "g".into(), created_at: now, updated_at: now },
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            accounts: accounts.to_vec(),
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn access_is_the_union_of_matching_groups_or_the_gateways_routes() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let (ra, rb) = (vec!["employee".to_owned()], vec!["manager".to_owned()]);
        let gws = vec![gw("192.168.50.0/24 192.168.60.0/24"), gw("192.168.60.0/24")];
        assert_eq!(access_of(a, &ra, &[], &gws), vec!["192.168.50.0/24", "192.168.60.0/24"]);
        let groups = vec![group(&["employee"], &[], &["192.168.50.0/24"]), group(&["manager"], &[a], &["10.1.0.0/16"])];
        assert_eq!(access_of(a, &ra, &groups, &gws), vec!["10.1.0.0/16", "192.168.50.0/24"]);
        assert_eq!(access_of(b, &rb, &groups, &gws), vec!["10.1.0.0/16"]);
        assert!(access_of(AccountId::new(), &[], &groups, &gws).is_empty());
    }

    #[test]
    fn metric_labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
