//! The VPN's queries. Every function that reads or writes tenant rows takes the organisation and filters by it;
//! the gateway's own lookups (by token, by network) are the exception, because a gateway is not a person in an
//! organisation: its token names its network.

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::OffsetDateTime;

use crate::model::{AccessGroupId, DeviceId, GatewayId, NetworkId};

/// The states that hold a seat and an address.
const LIVE: &str = "('pending', 'active')";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NetworkRow {
    pub id: NetworkId,
    pub org_id: OrgId,
    pub name: String,
    pub ipv4_cidr: String,
    pub ipv6_cidr: Option<String>,
    pub dns: String,
    pub require_approval: bool,
    pub default_expiry_days: i64,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GatewayRow {
    pub id: GatewayId,
    pub org_id: OrgId,
    pub network_id: NetworkId,
    pub name: String,
    pub endpoint: String,
    pub port: i64,
    pub public_key: String,
    pub routes: String,
    pub token_hash: String,
    pub last_seen_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GroupRow {
    pub id: AccessGroupId,
    pub org_id: OrgId,
    pub network_id: NetworkId,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An access group with who it is for and what it allows.
#[derive(Clone, Debug)]
pub struct Group {
    pub row: GroupRow,
    pub roles: Vec<String>,
    pub accounts: Vec<AccountId>,
    pub allow: Vec<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub org_id: OrgId,
    pub network_id: NetworkId,
    pub account_id: AccountId,
    pub name: String,
    pub public_key: String,
    pub slot: i64,
    pub address_v4: String,
    pub address_v6: Option<String>,
    pub state: String,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_handshake_at: Option<OffsetDateTime>,
    pub rx_bytes: i64,
    pub tx_bytes: i64,
    pub endpoint: Option<String>,
    pub owner_email: String,
    pub owner_name: String,
    pub network_name: String,
}

const DEVICE_SELECT: &str = "SELECT d.id, d.org_id, d.network_id, d.account_id, d.name, d.public_key, d.slot, d.address_v4,
    d.address_v6, d.state, d.expires_at, d.created_at, d.updated_at, d.last_handshake_at, d.rx_bytes, d.tx_bytes,
    d.endpoint, a.email AS owner_email, a.display_name AS owner_name, n.name AS network_name
    FROM vpn_devices d JOIN accounts a ON a.id = d.account_id JOIN vpn_networks n ON n.id = d.network_id";

// ---------------------------------------------------------------------------------------------------------------
// Networks

pub async fn networks(db: &Db, org: OrgId) -> DbResult<Vec<NetworkRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_networks WHERE org_id = $1 ORDER BY name, id")
        .bind(org).fetch_all(p).await?))
}

pub async fn network(db: &Db, org: OrgId, id: NetworkId) -> DbResult<Option<NetworkRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_networks WHERE org_id = $1 AND id = $2")
        .bind(org).bind(id).fetch_optional(p).await?))
}

pub async fn network_in(tx: &mut Tx, org: OrgId, id: NetworkId) -> DbResult<Option<NetworkRow>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as("SELECT * FROM vpn_networks WHERE org_id = $1 AND id = $2")
        .bind(org).bind(id).fetch_optional(c).await?))
}

/// Serialises changes to an organisation's networks (their pools must not overlap): a row lock on PostgreSQL,
/// the write lock SQLite's `BEGIN IMMEDIATE` already holds. False when there is no such organisation (a platform
/// admin may name any id).
pub async fn lock_org(tx: &mut Tx, org: OrgId) -> DbResult<bool> {
    let sql = match tx.engine() {
        agilekit_kernel::Engine::Postgres => "SELECT id FROM organisations WHERE id = $1 FOR UPDATE",
        agilekit_kernel::Engine::Sqlite => "SELECT id FROM organisations WHERE id = $1",
    };
    let row: Option<(OrgId,)> = db_run!(tx tx, |c| sqlx::query_as(sql).bind(org).fetch_optional(c).await?);
    Ok(row.is_some())
}

/// Every pool of the organisation's networks: (network, IPv4 prefix, IPv6 prefix).
pub async fn org_pools(tx: &mut Tx, org: OrgId) -> DbResult<Vec<(NetworkId, String, Option<String>)>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as("SELECT id, ipv4_cidr, ipv6_cidr FROM vpn_networks WHERE org_id = $1")
        .bind(org).fetch_all(c).await?))
}

pub async fn insert_network(tx: &mut Tx, n: &NetworkRow) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "INSERT INTO vpn_networks (id, org_id, name, ipv4_cidr, ipv6_cidr, dns, require_approval, default_expiry_days, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ).bind(n.id).bind(n.org_id).bind(&n.name).bind(&n.ipv4_cidr).bind(&n.ipv6_cidr).bind(&n.dns).bind(n.require_approval)
     .bind(n.default_expiry_days).bind(n.version).bind(n.created_at).bind(n.updated_at).execute(c).await?; });
    Ok(())
}

pub async fn update_network(tx: &mut Tx, n: &NetworkRow) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "UPDATE vpn_networks SET name = $1, dns = $2, require_approval = $3, default_expiry_days = $4, updated_at = $5
         WHERE org_id = $6 AND id = $7"
    ).bind(&n.name).bind(&n.dns).bind(n.require_approval).bind(n.default_expiry_days).bind(n.updated_at)
     .bind(n.org_id).bind(n.id).execute(c).await?; });
    Ok(())
}

/// Removes a network with its gateways, access groups and past devices (live devices are refused before this).
pub async fn delete_network(tx: &mut Tx, org: OrgId, id: NetworkId) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query("DELETE FROM vpn_access_group_members WHERE org_id = $1 AND group_id IN (SELECT id FROM vpn_access_groups WHERE network_id = $2)")
            .bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_access_group_allow WHERE org_id = $1 AND group_id IN (SELECT id FROM vpn_access_groups WHERE network_id = $2)")
            .bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_access_groups WHERE org_id = $1 AND network_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_gateways WHERE org_id = $1 AND network_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_devices WHERE org_id = $1 AND network_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_networks WHERE org_id = $1 AND id = $2").bind(org).bind(id).execute(&mut *c).await?;
    });
    Ok(())
}

/// Moves the network's version on (and takes its row lock on PostgreSQL, which serialises enrolments in one
/// pool). Returns the new version.
pub async fn bump_version(tx: &mut Tx, org: OrgId, id: NetworkId) -> DbResult<i64> {
    let (v,): (i64,) = db_run!(tx tx, |c| sqlx::query_as(
        "UPDATE vpn_networks SET version = version + 1 WHERE org_id = $1 AND id = $2 RETURNING version"
    ).bind(org).bind(id).fetch_one(c).await?);
    Ok(v)
}

/// The version alone: what the long-poll re-reads every half second.
pub async fn version(db: &Db, id: NetworkId) -> DbResult<Option<i64>> {
    let row: Option<(i64,)> = db_run!(db, |p| sqlx::query_as("SELECT version FROM vpn_networks WHERE id = $1")
        .bind(id).fetch_optional(p).await?);
    Ok(row.map(|r| r.0))
}

/// The network a gateway belongs to (the gateway's token already named it; no organisation to check).
pub async fn network_by_id(db: &Db, id: NetworkId) -> DbResult<Option<NetworkRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_networks WHERE id = $1").bind(id).fetch_optional(p).await?))
}

pub async fn live_device_count(db: &Db, org: OrgId, network: NetworkId) -> DbResult<i64> {
    let sql = format!("SELECT COUNT(*) FROM vpn_devices WHERE org_id = $1 AND network_id = $2 AND state IN {LIVE}");
    let (n,): (i64,) = db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(network).fetch_one(p).await?);
    Ok(n)
}

// ---------------------------------------------------------------------------------------------------------------
// Gateways

pub async fn gateways(db: &Db, org: OrgId, network: Option<NetworkId>) -> DbResult<Vec<GatewayRow>> {
    Ok(match network {
        Some(n) => db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_gateways WHERE org_id = $1 AND network_id = $2 ORDER BY created_at, id")
            .bind(org).bind(n).fetch_all(p).await?),
        None => db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_gateways WHERE org_id = $1 ORDER BY created_at, id")
            .bind(org).fetch_all(p).await?),
    })
}

/// The gateways of one network, first registered first (the first is the one devices' files point at).
pub async fn network_gateways(db: &Db, network: NetworkId) -> DbResult<Vec<GatewayRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_gateways WHERE network_id = $1 ORDER BY created_at, id")
        .bind(network).fetch_all(p).await?))
}

pub async fn gateway(db: &Db, org: OrgId, id: GatewayId) -> DbResult<Option<GatewayRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_gateways WHERE org_id = $1 AND id = $2")
        .bind(org).bind(id).fetch_optional(p).await?))
}

pub async fn gateway_by_token(db: &Db, token_hash: &str) -> DbResult<Option<GatewayRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM vpn_gateways WHERE token_hash = $1")
        .bind(token_hash).fetch_optional(p).await?))
}

pub async fn insert_gateway(tx: &mut Tx, g: &GatewayRow) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "INSERT INTO vpn_gateways (id, org_id, network_id, name, endpoint, port, public_key, routes, token_hash, last_seen_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ).bind(g.id).bind(g.org_id).bind(g.network_id).bind(&g.name).bind(&g.endpoint).bind(g.port).bind(&g.public_key)
     .bind(&g.routes).bind(&g.token_hash).bind(g.last_seen_at).bind(g.created_at).execute(c).await?; });
    Ok(())
}

pub async fn update_gateway(tx: &mut Tx, g: &GatewayRow) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "UPDATE vpn_gateways SET name = $1, endpoint = $2, port = $3, public_key = $4, routes = $5 WHERE org_id = $6 AND id = $7"
    ).bind(&g.name).bind(&g.endpoint).bind(g.port).bind(&g.public_key).bind(&g.routes).bind(g.org_id).bind(g.id).execute(c).await?; });
    Ok(())
}

pub async fn set_gateway_token(tx: &mut Tx, org: OrgId, id: GatewayId, token_hash: &str) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query("UPDATE vpn_gateways SET token_hash = $1 WHERE org_id = $2 AND id = $3")
        .bind(token_hash).bind(org).bind(id).execute(c).await?; });
    Ok(())
}

pub async fn delete_gateway(tx: &mut Tx, org: OrgId, id: GatewayId) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query("DELETE FROM vpn_gateways WHERE org_id = $1 AND id = $2").bind(org).bind(id).execute(c).await?; });
    Ok(())
}

pub async fn touch_gateway(db: &Db, id: GatewayId, at: OffsetDateTime) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("UPDATE vpn_gateways SET last_seen_at = $1 WHERE id = $2").bind(at).bind(id).execute(p).await?; });
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Access groups

pub async fn groups(db: &Db, org: OrgId, network: NetworkId) -> DbResult<Vec<Group>> {
    let rows: Vec<GroupRow> = db_run!(db, |p| sqlx::query_as(
        "SELECT * FROM vpn_access_groups WHERE org_id = $1 AND network_id = $2 ORDER BY name, id"
    ).bind(org).bind(network).fetch_all(p).await?);
    let members: Vec<(AccessGroupId, Option<String>, Option<AccountId>)> = db_run!(db, |p| sqlx::query_as(
        "SELECT m.group_id, m.role, m.account_id FROM vpn_access_group_members m JOIN vpn_access_groups g ON g.id = m.group_id
         WHERE m.org_id = $1 AND g.network_id = $2 ORDER BY m.role, m.account_id"
    ).bind(org).bind(network).fetch_all(p).await?);
    let allow: Vec<(AccessGroupId, String)> = db_run!(db, |p| sqlx::query_as(
        "SELECT a.group_id, a.cidr FROM vpn_access_group_allow a JOIN vpn_access_groups g ON g.id = a.group_id
         WHERE a.org_id = $1 AND g.network_id = $2 ORDER BY a.cidr"
    ).bind(org).bind(network).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|row| Group {
            roles: members.iter().filter(|m| m.0 == row.id).filter_map(|m| m.1.clone()).collect(),
            accounts: members.iter().filter(|m| m.0 == row.id).filter_map(|m| m.2).collect(),
            allow: allow.iter().filter(|a| a.0 == row.id).map(|a| a.1.clone()).collect(),
            row,
        })
        .collect())
}

pub async fn group(db: &Db, org: OrgId, network: NetworkId, id: AccessGroupId) -> DbResult<Option<Group>> {
    Ok(groups(db, org, network).await?.into_iter().find(|g| g.row.id == id))
}

/// Writes a group and replaces its members and allowed prefixes.
pub async fn save_group(tx: &mut Tx, g: &Group, insert: bool) -> DbResult<()> {
    let r = &g.row;
    db_run!(tx tx, |c| {
        if insert {
            sqlx::query("INSERT INTO vpn_access_groups (id, org_id, network_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(r.id).bind(r.org_id).bind(r.network_id).bind(&r.name).bind(r.created_at).bind(r.updated_at).execute(&mut *c).await?;
        } else {
            sqlx::query("UPDATE vpn_access_groups SET name = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
                .bind(&r.name).bind(r.updated_at).bind(r.org_id).bind(r.id).execute(&mut *c).await?;
            sqlx::query("DELETE FROM vpn_access_group_members WHERE org_id = $1 AND group_id = $2").bind(r.org_id).bind(r.id).execute(&mut *c).await?;
            sqlx::query("DELETE FROM vpn_access_group_allow WHERE org_id = $1 AND group_id = $2").bind(r.org_id).bind(r.id).execute(&mut *c).await?;
        }
        for role in &g.roles {
            sqlx::query("INSERT INTO vpn_access_group_members (group_id, org_id, role, account_id) VALUES ($1, $2, $3, NULL)")
                .bind(r.id).bind(r.org_id).bind(role).execute(&mut *c).await?;
        }
        for a in &g.accounts {
            sqlx::query("INSERT INTO vpn_access_group_members (group_id, org_id, role, account_id) VALUES ($1, $2, NULL, $3)")
                .bind(r.id).bind(r.org_id).bind(*a).execute(&mut *c).await?;
        }
        for cidr in &g.allow {
            sqlx::query("INSERT INTO vpn_access_group_allow (group_id, org_id, cidr) VALUES ($1, $2, $3)")
                .bind(r.id).bind(r.org_id).bind(cidr).execute(&mut *c).await?;
        }
    });
    Ok(())
}

pub async fn delete_group(tx: &mut Tx, org: OrgId, id: AccessGroupId) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query("DELETE FROM vpn_access_group_members WHERE org_id = $1 AND group_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_access_group_allow WHERE org_id = $1 AND group_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM vpn_access_groups WHERE org_id = $1 AND id = $2").bind(org).bind(id).execute(&mut *c).await?;
    });
    Ok(())
}

/// Every (account, role) of the organisation: what access groups are matched against.
pub async fn org_roles(db: &Db, org: OrgId) -> DbResult<Vec<(AccountId, String)>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT account_id, role FROM memberships WHERE org_id = $1")
        .bind(org).fetch_all(p).await?))
}

/// One account's roles in the organisation.
pub async fn account_roles(db: &Db, org: OrgId, account: AccountId) -> DbResult<Vec<String>> {
    let rows: Vec<(String,)> = db_run!(db, |p| sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND account_id = $2")
        .bind(org).bind(account).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Which of `accounts` are members of the organisation.
pub async fn members_among(db: &Db, org: OrgId, accounts: &[AccountId]) -> DbResult<Vec<AccountId>> {
    let all: Vec<(AccountId,)> = db_run!(db, |p| sqlx::query_as("SELECT DISTINCT account_id FROM memberships WHERE org_id = $1")
        .bind(org).fetch_all(p).await?);
    Ok(accounts.iter().copied().filter(|a| all.iter().any(|m| m.0 == *a)).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Devices

pub async fn device(db: &Db, org: OrgId, id: DeviceId) -> DbResult<Option<DeviceRow>> {
    let sql = format!("{DEVICE_SELECT} WHERE d.org_id = $1 AND d.id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(p).await?))
}

pub async fn device_in(tx: &mut Tx, org: OrgId, id: DeviceId) -> DbResult<Option<DeviceRow>> {
    let sql = format!("{DEVICE_SELECT} WHERE d.org_id = $1 AND d.id = $2");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(c).await?))
}

/// The account's devices in the organisation, newest first.
pub async fn devices_of(db: &Db, org: OrgId, account: AccountId) -> DbResult<Vec<DeviceRow>> {
    let sql = format!("{DEVICE_SELECT} WHERE d.org_id = $1 AND d.account_id = $2 ORDER BY d.created_at DESC, d.id");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(account).fetch_all(p).await?))
}

/// Every device of the organisation: live ones first, then by owner.
pub async fn devices(db: &Db, org: OrgId) -> DbResult<Vec<DeviceRow>> {
    let sql = format!(
        "{DEVICE_SELECT} WHERE d.org_id = $1
         ORDER BY CASE d.state WHEN 'pending' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, a.display_name, d.created_at DESC, d.id"
    );
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(p).await?))
}

/// Whether a live device of the network already uses this public key.
pub async fn live_key_taken(tx: &mut Tx, network: NetworkId, key: &str) -> DbResult<bool> {
    let sql = format!("SELECT COUNT(*) FROM vpn_devices WHERE network_id = $1 AND public_key = $2 AND state IN {LIVE}");
    let (n,): (i64,) = db_run!(tx tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(network).bind(key).fetch_one(c).await?);
    Ok(n > 0)
}

/// The lowest slot no live device holds, from 2 (after the gateway's 1): either 2 itself or the slot just after
/// a held one. May be past the pool's end; the caller checks.
pub async fn lowest_free_slot(tx: &mut Tx, network: NetworkId) -> DbResult<i64> {
    // The common case: the held slots run 2..=max without a gap, so the next is max + 1 (one index scan).
    let sql = format!("SELECT COUNT(*), MAX(slot) FROM vpn_devices WHERE network_id = $1 AND state IN {LIVE}");
    let (n, max): (i64, Option<i64>) = db_run!(tx tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(network).fetch_one(c).await?);
    match max {
        None => return Ok(2),
        Some(m) if n == m - 1 => return Ok(m + 1),
        Some(_) => {}
    }
    let sql = format!(
        "SELECT MIN(s) FROM (
            SELECT 2 AS s WHERE NOT EXISTS (SELECT 1 FROM vpn_devices WHERE network_id = $1 AND slot = 2 AND state IN {LIVE})
            UNION ALL
            SELECT d.slot + 1 AS s FROM vpn_devices d WHERE d.network_id = $1 AND d.state IN {LIVE}
              AND NOT EXISTS (SELECT 1 FROM vpn_devices e WHERE e.network_id = $1 AND e.slot = d.slot + 1 AND e.state IN {LIVE})
         ) t"
    );
    let (s,): (Option<i64>,) = db_run!(tx tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(network).fetch_one(c).await?);
    Ok(s.unwrap_or(2))
}

pub async fn insert_device(tx: &mut Tx, d: &DeviceRow) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "INSERT INTO vpn_devices (id, org_id, network_id, account_id, name, public_key, slot, address_v4, address_v6, state,
             expires_at, created_at, updated_at, last_handshake_at, rx_bytes, tx_bytes, endpoint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, 0, 0, NULL)"
    ).bind(d.id).bind(d.org_id).bind(d.network_id).bind(d.account_id).bind(&d.name).bind(&d.public_key).bind(d.slot)
     .bind(&d.address_v4).bind(&d.address_v6).bind(&d.state).bind(d.expires_at).bind(d.created_at).bind(d.updated_at)
     .execute(c).await?; });
    Ok(())
}

/// Moves a device from one state to another; false when it was no longer in `from` (someone else got there first).
pub async fn set_state(tx: &mut Tx, org: OrgId, id: DeviceId, from: &[&str], to: &str, at: OffsetDateTime) -> DbResult<bool> {
    let list = from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    // `from` holds only this crate's state names (never user input).
    let sql = format!("UPDATE vpn_devices SET state = $1, updated_at = $2 WHERE org_id = $3 AND id = $4 AND state IN ({list})");
    let n = db_run!(tx tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to).bind(at).bind(org).bind(id).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn rename_device(tx: &mut Tx, org: OrgId, id: DeviceId, name: &str, at: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query("UPDATE vpn_devices SET name = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
        .bind(name).bind(at).bind(org).bind(id).execute(c).await?; });
    Ok(())
}

pub async fn set_expiry(tx: &mut Tx, org: OrgId, id: DeviceId, expires_at: OffsetDateTime, at: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query("UPDATE vpn_devices SET expires_at = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
        .bind(expires_at).bind(at).bind(org).bind(id).execute(c).await?; });
    Ok(())
}

/// A network's active devices with their owners: the gateway's peer set.
pub async fn active_peers(db: &Db, network: NetworkId) -> DbResult<Vec<(String, String, Option<String>, AccountId)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT public_key, address_v4, address_v6, account_id FROM vpn_devices WHERE network_id = $1 AND state = 'active' ORDER BY slot"
    ).bind(network).fetch_all(p).await?))
}

/// Live devices whose time is up, at most `limit`: (organisation, device).
pub async fn due_to_expire(db: &Db, now: OffsetDateTime, limit: i64) -> DbResult<Vec<(OrgId, DeviceId)>> {
    let sql = format!("SELECT org_id, id FROM vpn_devices WHERE state IN {LIVE} AND expires_at <= $1 ORDER BY expires_at LIMIT $2");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(p).await?))
}

/// Live devices whose owner is no longer a member of the organisation or whose account is disabled.
pub async fn orphaned(db: &Db, limit: i64) -> DbResult<Vec<(OrgId, DeviceId)>> {
    let sql = format!(
        "SELECT d.org_id, d.id FROM vpn_devices d JOIN accounts a ON a.id = d.account_id
         WHERE d.state IN {LIVE} AND (a.disabled = $1 OR NOT EXISTS
             (SELECT 1 FROM memberships m WHERE m.org_id = d.org_id AND m.account_id = d.account_id))
         LIMIT $2"
    );
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(true).bind(limit).fetch_all(p).await?))
}

/// One peer's figures as its gateway last saw them.
pub struct PeerStatus {
    pub public_key: String,
    pub last_handshake: Option<OffsetDateTime>,
    pub rx_bytes: i64,
    pub tx_bytes: i64,
    pub endpoint: Option<String>,
}

/// Stores a gateway's report; returns how many devices changed. Peers whose figures did not move are not written,
/// and on PostgreSQL the whole report is one statement (arrays joined on the key), so the rows a revocation needs are
/// held for milliseconds, not for thousands of round trips: a slow report must never delay a revocation (the
/// benchmark found one that did, 15 s, when this was a loop of single-row updates).
pub async fn record_status(db: &Db, network: NetworkId, peers: &[PeerStatus]) -> DbResult<u64> {
    if peers.is_empty() {
        return Ok(0);
    }
    let changed =
        "(d.last_handshake_at IS DISTINCT FROM s.hs OR d.rx_bytes <> s.rx OR d.tx_bytes <> s.tx OR d.endpoint IS DISTINCT FROM s.ep)";
    match db {
        Db::Postgres(p) => {
            let sql = format!(
                "UPDATE vpn_devices d SET last_handshake_at = s.hs, rx_bytes = s.rx, tx_bytes = s.tx, endpoint = s.ep
                 FROM UNNEST($2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::text[]) AS s(key, hs, rx, tx, ep)
                 WHERE d.network_id = $1 AND d.public_key = s.key AND d.state IN {LIVE} AND {changed}"
            );
            let keys: Vec<&str> = peers.iter().map(|s| s.public_key.as_str()).collect();
            let hs: Vec<Option<OffsetDateTime>> = peers.iter().map(|s| s.last_handshake).collect();
            let rx: Vec<i64> = peers.iter().map(|s| s.rx_bytes).collect();
            let txb: Vec<i64> = peers.iter().map(|s| s.tx_bytes).collect();
            let ep: Vec<Option<&str>> = peers.iter().map(|s| s.endpoint.as_deref()).collect();
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(network).bind(keys).bind(hs).bind(rx).bind(txb).bind(ep)
                .execute(p).await?.rows_affected())
        }
        Db::Sqlite(_) => {
            // SQLite writes one row at a time in-process (no round trips); one transaction keeps it one fsync.
            let sql = format!(
                "UPDATE vpn_devices AS d SET last_handshake_at = s.hs, rx_bytes = s.rx, tx_bytes = s.tx, endpoint = s.ep
                 FROM (SELECT $1 AS hs, $2 AS rx, $3 AS tx, $4 AS ep) AS s
                 WHERE d.network_id = $5 AND d.public_key = $6 AND d.state IN {LIVE}
                   AND (d.last_handshake_at IS NOT s.hs OR d.rx_bytes <> s.rx OR d.tx_bytes <> s.tx OR d.endpoint IS NOT s.ep)"
            );
            let mut tx = db.begin().await?;
            let mut n = 0;
            for s in peers {
                n += db_run!(tx &mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(s.last_handshake).bind(s.rx_bytes).bind(s.tx_bytes).bind(&s.endpoint).bind(network).bind(&s.public_key)
                    .execute(c).await?.rows_affected());
            }
            tx.commit().await?;
            Ok(n)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics (all organisations: the operator's Prometheus)

pub async fn peer_counts(db: &Db) -> DbResult<Vec<(String, String, i64)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT o.ipa_code, d.state, COUNT(*) FROM vpn_devices d JOIN organisations o ON o.id = d.org_id
         GROUP BY o.ipa_code, d.state ORDER BY o.ipa_code, d.state"
    ).fetch_all(p).await?))
}

pub async fn connected_counts(db: &Db, since: OffsetDateTime) -> DbResult<Vec<(String, i64)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT o.ipa_code, COUNT(*) FROM vpn_devices d JOIN organisations o ON o.id = d.org_id
         WHERE d.state = 'active' AND d.last_handshake_at >= $1 GROUP BY o.ipa_code ORDER BY o.ipa_code"
    ).bind(since).fetch_all(p).await?))
}

pub async fn all_gateways(db: &Db) -> DbResult<Vec<(GatewayId, String, String, Option<OffsetDateTime>)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT g.id, g.name, o.ipa_code, g.last_seen_at FROM vpn_gateways g JOIN organisations o ON o.id = g.org_id ORDER BY g.id"
    ).fetch_all(p).await?))
}
