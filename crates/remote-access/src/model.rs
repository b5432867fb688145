//! The VPN's types, parsed once at the boundary: WireGuard keys, address pools (CIDRs) and how they are sized and
//! allocated, device states, and the wg-quick file a device downloads. No I/O here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use serde::{Serialize, Serializer};

agilekit_kernel::typed_id!(
    /// A VPN network of an organisation: an address pool and the gateways that serve it.
    NetworkId
);
agilekit_kernel::typed_id!(
    /// A gateway (VPN concentrator) of a network, driven by `agilekit gateway`.
    GatewayId
);
agilekit_kernel::typed_id!(
    /// An employee's enrolled device (a WireGuard peer).
    DeviceId
);
agilekit_kernel::typed_id!(
    /// An access group: who (roles, accounts) may reach which internal networks through a network's gateways.
    AccessGroupId
);

/// Field error codes of this domain (localised as `field-<code>` in `locales/*/vpn.ftl`).
pub mod codes {
    pub const INVALID_KEY: &str = "invalid-key";
    pub const CIDR_HOST_BITS: &str = "cidr-host-bits";
    pub const CIDR_OVERLAP: &str = "cidr-overlap";
    pub const CIDR_FAMILY: &str = "cidr-family";
    pub const POOL_TOO_SMALL: &str = "pool-too-small";
    pub const POOL_EXHAUSTED: &str = "pool-exhausted";
    pub const KEY_IN_USE: &str = "key-in-use";
    pub const FORMAT: &str = "format";
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

/// A WireGuard key (public or private): 32 bytes, written as standard base64 (44 characters with one `=`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WgKey([u8; 32]);

impl WgKey {
    /// Parses the base64 form; anything else (wrong length, bad characters, a hex key) is `invalid-key`.
    pub fn parse(input: &str) -> Result<WgKey, &'static str> {
        let s = input.trim();
        if s.len() != 44 {
            return Err(codes::INVALID_KEY);
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| codes::INVALID_KEY)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| codes::INVALID_KEY)?;
        Ok(WgKey(arr))
    }

    pub fn from_bytes(b: [u8; 32]) -> WgKey {
        WgKey(b)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Display for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// Never prints the key itself: a private key must not end up in a log.
impl fmt::Debug for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WgKey(…)")
    }
}

impl Serialize for WgKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

/// A freshly generated key pair. The private half is shown once and dropped (zeroised) afterwards.
pub struct KeyPair {
    pub private: WgKey,
    pub public: WgKey,
}

impl KeyPair {
    /// A Curve25519 key pair from the operating system's random source, as `wg genkey | wg pubkey` makes.
    pub fn generate() -> KeyPair {
        let seed: [u8; 32] = rand::random();
        let secret = x25519_dalek::StaticSecret::from(seed);
        let public = x25519_dalek::PublicKey::from(&secret);
        KeyPair { private: WgKey(secret.to_bytes()), public: WgKey(public.to_bytes()) }
    }

    /// The public key of a private key (what `wg pubkey` prints).
    pub fn public_of(private: &WgKey) -> WgKey {
        let secret = x25519_dalek::StaticSecret::from(private.0);
        WgKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Address pools

/// A network prefix, IPv4 or IPv6, in canonical form: the host bits are zero (`10.8.0.0/19`, never `10.8.0.1/19`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The host part of a prefix of `prefix` bits in an address of `width` bits.
fn host_mask(width: u8, prefix: u8) -> u128 {
    let host_bits = width - prefix;
    if host_bits >= 128 { u128::MAX } else { (1u128 << host_bits) - 1 }
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::y/n`. A malformed text is `format`; set host bits are `cidr-host-bits`.
    pub fn parse(input: &str) -> Result<Cidr, &'static str> {
        let s = input.trim();
        let (addr, prefix) = s.split_once('/').ok_or(codes::FORMAT)?;
        let addr: IpAddr = addr.parse().map_err(|_| codes::FORMAT)?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(codes::FORMAT);
        }
        let prefix: u8 = prefix.parse().map_err(|_| codes::FORMAT)?;
        let (v, width) = bits(addr);
        if prefix > width {
            return Err(codes::FORMAT);
        }
        if v & host_mask(width, prefix) != 0 {
            return Err(codes::CIDR_HOST_BITS);
        }
        Ok(Cidr { addr, prefix })
    }

    /// A host route for one address (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix: bits(addr).1 }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn width(&self) -> u8 {
        bits(self.addr).1
    }

    /// Whether the two prefixes share any address (one contains the other). Different families never overlap.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.is_v4() != other.is_v4() {
            return false;
        }
        let net = !host_mask(self.width(), self.prefix.min(other.prefix));
        bits(self.addr).0 & net == bits(other.addr).0 & net
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_v4() && Cidr::host(ip).overlaps(self)
    }

    /// How many addresses the prefix spans, saturating at `u64::MAX`.
    pub fn size(&self) -> u64 {
        let host_bits = self.width() - self.prefix;
        if host_bits >= 64 { u64::MAX } else { 1u64 << host_bits }
    }

    /// How many devices the pool can address: every address but the network address, the gateway's (the first
    /// host) and, in IPv4, the broadcast address. A /20 ends at 4,093 devices; 4,500 need a /19.
    pub fn device_capacity(&self) -> u64 {
        let reserved = if self.is_v4() { 3 } else { 2 };
        self.size().saturating_sub(reserved)
    }

    /// The address at offset `slot` from the network address (slot 1 is the gateway, devices start at 2).
    pub fn nth(&self, slot: u64) -> Option<IpAddr> {
        if slot >= self.size() {
            return None;
        }
        let (base, _) = bits(self.addr);
        let v = base.checked_add(u128::from(slot))?;
        Some(match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).ok()?)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
        })
    }

    /// The gateway's interface address in this pool, with the pool's prefix (`10.8.0.1/19`).
    pub fn gateway_address(&self) -> Option<String> {
        self.nth(1).map(|a| format!("{a}/{}", self.prefix))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How many devices a network with these pools can hold: the smaller of the two.
pub fn pool_capacity(v4: &Cidr, v6: Option<&Cidr>) -> u64 {
    let c = v4.device_capacity();
    v6.map_or(c, |p| c.min(p.device_capacity()))
}

/// The highest slot a device may take in these pools (slots run from 2 to this, inclusive).
pub fn last_slot(v4: &Cidr, v6: Option<&Cidr>) -> u64 {
    pool_capacity(v4, v6) + 1
}

/// Parses a list of prefixes, naming the element that failed (`routes[2]`).
pub fn parse_cidrs(field: &str, items: &[String], errors: &mut agilekit_kernel::FieldErrors) -> Vec<Cidr> {
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match Cidr::parse(s) {
            Ok(c) => out.push(c),
            Err(code) => errors.add(&format!("{field}[{i}]"), code),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Devices

/// A device's life: waiting for an administrator (when the network asks for approval), usable, or over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Pending,
    Active,
    Revoked,
    Expired,
}

impl DeviceState {
    pub const ALL: [DeviceState; 4] = [DeviceState::Pending, DeviceState::Active, DeviceState::Revoked, DeviceState::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Pending => "pending",
            DeviceState::Active => "active",
            DeviceState::Revoked => "revoked",
            DeviceState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceState> {
        DeviceState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Holds a seat and an address.
    pub fn is_live(self) -> bool {
        matches!(self, DeviceState::Pending | DeviceState::Active)
    }
}

/// A handshake this recent means the device is connected now.
pub const CONNECTED_WITHIN: time::Duration = time::Duration::minutes(3);

/// How often the gateway's long-poll is held at most, in seconds (the contract's `poll_secs`).
pub const POLL_SECS: u64 = 25;

/// What a wg-quick file needs to know.
pub struct ConfigInput<'a> {
    /// The device's private key, only in the one response that generated it; otherwise a commented placeholder.
    pub private_key: Option<&'a WgKey>,
    pub address_v4: &'a str,
    pub address_v6: Option<&'a str>,
    pub dns: &'a [String],
    pub gateway_public_key: &'a str,
    pub endpoint_host: &'a str,
    pub endpoint_port: u16,
    pub allowed_ips: &'a [String],
    pub device_name: &'a str,
}

/// `host:port` as WireGuard's `Endpoint` wants it (an IPv6 literal in brackets).
pub fn endpoint(host: &str, port: u16) -> String {
    if host.parse::<Ipv6Addr>().is_ok() { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The wg-quick configuration of a device. When the server never saw the private key, the `PrivateKey` line is
/// a comment telling the user to paste the key their device generated.
pub fn render_config(c: &ConfigInput<'_>) -> String {
    let mut out = String::new();
    // The name is the user's own text: keep it on one line of the comment.
    let name: String = c.device_name.chars().map(|ch| if ch.is_control() { ' ' } else { ch }).collect();
    out.push_str(&format!("# agilekit VPN: {name}\n[Interface]\n"));
    match c.private_key {
        Some(k) => out.push_str(&format!("PrivateKey = {k}\n")),
        None => out.push_str(
            "# The private key never left your device: paste it below and remove the '#'.\n# PrivateKey = <your private key>\n",
        ),
    }
    let mut addrs = vec![format!("{}/32", c.address_v4)];
    if let Some(v6) = c.address_v6 {
        addrs.push(format!("{v6}/128"));
    }
    out.push_str(&format!("Address = {}\n", addrs.join(", ")));
    if !c.dns.is_empty() {
        out.push_str(&format!("DNS = {}\n", c.dns.join(", ")));
    }
    out.push_str("\n[Peer]\n");
    out.push_str(&format!("PublicKey = {}\n", c.gateway_public_key));
    out.push_str(&format!("Endpoint = {}\n", endpoint(c.endpoint_host, c.endpoint_port)));
    out.push_str(&format!("AllowedIPs = {}\n", c.allowed_ips.join(", ")));
    out.push_str("PersistentKeepalive = 25\n");
    out
}

/// A gateway's public endpoint host: an IP address or a DNS name (letters, digits, dots and hyphens).
pub fn parse_endpoint_host(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Err("required");
    }
    if s.len() > 253 {
        return Err("too-long");
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if ok { Ok(s.to_ascii_lowercase()) } else { Err(codes::FORMAT) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_base64_of_32_bytes_only() {
        let k = KeyPair::generate();
        let text = k.public.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(WgKey::parse(&format!(" {text} ")).unwrap(), k.public);
        assert_eq!(WgKey::parse(""), Err(codes::INVALID_KEY));
        assert_eq!(WgKey::parse(&text[..43]), Err(codes::INVALID_KEY));
        assert_eq!(WgKey::parse(&"A".repeat(44)), Err(codes::INVALID_KEY));
        // 33 bytes of base64 is 44 characters without padding: still not a key.
        assert_eq!(WgKey::parse(&base64::engine::general_purpose::STANDARD.encode([7u8; 33])), Err(codes::INVALID_KEY));
        assert_eq!(format!("{:?}", k.private), "WgKey(…)");
    }

    #[test]
    fn generated_keys_match_wg_pubkey() {
        let k = KeyPair::generate();
        assert_eq!(KeyPair::public_of(&k.private), k.public);
        // RFC 7748 §6.1: Alice's private key and public key.
        let alice = WgKey::from_bytes(
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").unwrap().try_into().unwrap(),
        );
        assert_eq!(
            hex::encode(KeyPair::public_of(&alice).as_bytes()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        // And the real tool, where it is installed.
        if let Ok(mut child) = std::process::Command::new("wg")
            .arg("pubkey")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(format!("{}\n", k.private).as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), k.public.to_base64());
        }
    }

    #[test]
    fn cidrs_parse_canonical_prefixes_only() {
        let c = Cidr::parse("10.8.0.0/19").unwrap();
        assert_eq!(c.to_string(), "10.8.0.0/19");
        assert_eq!(Cidr::parse("10.8.0.1/19"), Err(codes::CIDR_HOST_BITS));
        assert_eq!(Cidr::parse("10.8.32.0/19").unwrap().prefix(), 19);
        assert_eq!(Cidr::parse("10.8.16.0/19"), Err(codes::CIDR_HOST_BITS));
        assert_eq!(Cidr::parse("10.8.0.0"), Err(codes::FORMAT));
        assert_eq!(Cidr::parse("10.8.0.0/33"), Err(codes::FORMAT));
        assert_eq!(Cidr::parse("10.8.0.0/-1"), Err(codes::FORMAT));
        assert_eq!(Cidr::parse("10.8.0/19"), Err(codes::FORMAT));
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
        assert_eq!(Cidr::parse("192.168.1.7/32").unwrap().size(), 1);
        let v6 = Cidr::parse("fd00:8::/64").unwrap();
        assert!(!v6.is_v4());
        assert_eq!(Cidr::parse("fd00:8::1/64"), Err(codes::CIDR_HOST_BITS));
        assert_eq!(Cidr::parse("::/0").unwrap().prefix(), 0);
        assert_eq!(Cidr::parse("fd00::1/128").unwrap().size(), 1);
        assert_eq!(Cidr::parse("fd00::/129"), Err(codes::FORMAT));
    }

    #[test]
    fn overlap_is_containment_within_a_family() {
        let a = Cidr::parse("10.8.0.0/19").unwrap();
        assert!(a.overlaps(&Cidr::parse("10.8.31.0/24").unwrap()));
        assert!(Cidr::parse("10.0.0.0/8").unwrap().overlaps(&a));
        assert!(!a.overlaps(&Cidr::parse("10.8.32.0/19").unwrap()));
        assert!(!a.overlaps(&Cidr::parse("fd00::/8").unwrap()));
        assert!(Cidr::parse("fd00:8::/64").unwrap().overlaps(&Cidr::parse("fd00::/16").unwrap()));
        assert!(!Cidr::parse("fd00:8::/64").unwrap().overlaps(&Cidr::parse("fd00:9::/64").unwrap()));
        assert!(a.contains("10.8.0.2".parse().unwrap()));
        assert!(!a.contains("10.8.32.2".parse().unwrap()));
    }

    #[test]
    fn pools_are_sized_for_the_seats() {
        assert_eq!(Cidr::parse("10.8.0.0/20").unwrap().device_capacity(), 4093);
        assert!(Cidr::parse("10.8.0.0/20").unwrap().device_capacity() < 4500);
        assert!(Cidr::parse("10.8.0.0/19").unwrap().device_capacity() >= 4500);
        assert_eq!(Cidr::parse("10.9.0.0/30").unwrap().device_capacity(), 1);
        assert_eq!(Cidr::parse("10.9.0.0/31").unwrap().device_capacity(), 0);
        let v4 = Cidr::parse("10.8.0.0/19").unwrap();
        let v6 = Cidr::parse("fd00:8::/120").unwrap();
        assert_eq!(pool_capacity(&v4, Some(&v6)), 254);
        assert_eq!(pool_capacity(&v4, Some(&Cidr::parse("fd00:8::/64").unwrap())), 8189);
        assert_eq!(last_slot(&Cidr::parse("10.9.0.0/30").unwrap(), None), 2);
    }

    #[test]
    fn addresses_count_from_the_network_address() {
        let v4 = Cidr::parse("10.8.0.0/19").unwrap();
        assert_eq!(v4.nth(1).unwrap().to_string(), "10.8.0.1");
        assert_eq!(v4.nth(2).unwrap().to_string(), "10.8.0.2");
        assert_eq!(v4.nth(256).unwrap().to_string(), "10.8.1.0");
        assert_eq!(v4.nth(8191).unwrap().to_string(), "10.8.31.255");
        assert!(v4.nth(8192).is_none());
        assert_eq!(v4.gateway_address().unwrap(), "10.8.0.1/19");
        let v6 = Cidr::parse("fd00:8::/64").unwrap();
        assert_eq!(v6.nth(2).unwrap().to_string(), "fd00:8::2");
        assert_eq!(v6.gateway_address().unwrap(), "fd00:8::1/64");
    }

    #[test]
    fn the_config_carries_the_key_only_when_given() {
        let k = KeyPair::generate();
        let allowed = vec!["192.168.50.0/24".to_owned()];
        let dns = vec!["192.168.50.53".to_owned()];
        let mut input = ConfigInput {
            private_key: None,
            address_v4: "10.8.0.2",
            address_v6: Some("fd00:8::2"),
            dns: &dns,
            gateway_public_key: "GW",
            endpoint_host: "2001:db8::1",
            endpoint_port: 51820,
            allowed_ips: &allowed,
            device_name: "Laptop\nEvil = 1",
        };
        let text = render_config(&input);
        assert!(text.contains("# PrivateKey = <your private key>\n"));
        assert!(!text.lines().any(|l| l.starts_with("PrivateKey")));
        assert!(text.contains("Address = 10.8.0.2/32, fd00:8::2/128\n"));
        assert!(text.contains("Endpoint = [2001:db8::1]:51820\n"));
        assert!(text.contains("AllowedIPs = 192.168.50.0/24\n"));
        assert!(text.contains("PersistentKeepalive = 25\n"));
        assert!(!text.contains("\nEvil"));
        input.private_key = Some(&k.private);
        assert!(render_config(&input).contains(&format!("\nPrivateKey = {}\n", k.private)));
    }

    #[test]
    fn endpoint_hosts_are_addresses_or_names() {
        assert_eq!(parse_endpoint_host("vpn.Regione.example").unwrap(), "vpn.regione.example");
        assert_eq!(parse_endpoint_host("192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(parse_endpoint_host("bad host"), Err(codes::FORMAT));
        assert_eq!(parse_endpoint_host("-x.example"), Err(codes::FORMAT));
        assert_eq!(parse_endpoint_host(""), Err("required"));
    }
}
