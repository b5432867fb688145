//! A client for WireGuard's cross-platform userspace API (UAPI): the line protocol that wireguard-go and boringtun
//! serve on `/var/run/wireguard/<interface>.sock`. `get=1` reads the device and its peers, `set=1` changes them;
//! keys travel in hex, and every answer ends with `errno=N`. Kernel WireGuard does not serve this socket (the agent
//! reaches it through `wg`: see `wgtool`).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// What can go wrong talking to a WireGuard interface through its UAPI socket.
#[derive(Debug, thiserror::Error)]
pub enum UapiError {
    /// No socket: the interface does not exist, or it is kernel WireGuard (which has no UAPI socket).
    #[error(
        "no WireGuard UAPI socket at {0}: start the interface with a userspace implementation (`wireguard-go <iface>` or \
         `boringtun-cli <iface>`) first; kernel WireGuard has no UAPI socket: drive it with `--backend wg` (or auto)"
    )]
    NoSocket(PathBuf),
    #[error("WireGuard UAPI socket {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The implementation refused the operation (`errno=N`, N ≠ 0): e.g. a bad key or a port in use.
    #[error("WireGuard refused the operation (errno={0})")]
    Errno(i64),
    /// An answer that does not follow the protocol.
    #[error("malformed UAPI answer: {0}")]
    Protocol(String),
}

/// A Curve25519 key as WireGuard uses it (base64 in configurations, hex on the UAPI socket).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn from_base64(s: &str) -> Option<Key> {
        let s = s.trim();
        // 32 bytes are always 44 base64 characters ending in one '='.
        if s.len() != 44 {
            return None;
        }
        let bytes = B64.decode(s).ok()?;
        Some(Key(bytes.try_into().ok()?))
    }

    pub fn from_hex(s: &str) -> Option<Key> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Key(out))
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The public key of this private key.
    pub fn public(&self) -> Key {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        Key(*x25519_dalek::PublicKey::from(&secret).as_bytes())
    }

    /// A new private key, clamped as `wg genkey` does.
    pub fn generate() -> Key {
        let mut k: [u8; 32] = rand::random();
        k[0] &= 248;
        k[31] = (k[31] & 127) | 64;
        Key(k)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// Only the base64 form: a private key must be printable in logs only on purpose.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", &self.to_base64()[..8])
    }
}

/// An address prefix (`10.8.0.2/32`, `fd00:8::/64`), kept with its host bits cleared so that equal networks compare
/// equal however they were written (WireGuard masks allowed IPs the same way).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Some(Cidr { addr, prefix })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn contains(&self, other: &Cidr) -> bool {
        if self.is_ipv4() != other.is_ipv4() || other.prefix < self.prefix {
            return false;
        }
        Cidr::new(other.addr, self.prefix).is_some_and(|c| c.addr == self.addr)
    }
}

impl FromStr for Cidr {
    type Err = String;
    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("not an IP address: {s:?}"))?;
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| format!("not a prefix length: {s:?}"))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, prefix).ok_or_else(|| format!("prefix too long: {s:?}"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A peer as the interface reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub public_key: Key,
    /// `1.2.3.4:5678` or `[::1]:5678`, as the implementation prints it.
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<Cidr>,
    /// Unix seconds; `None` when the peer never completed a handshake.
    pub last_handshake: Option<i64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub persistent_keepalive: u16,
}

/// The interface as `get=1` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    pub private_key: Option<Key>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    pub peers: Vec<PeerInfo>,
}

/// One change of a `set=1` operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerSet {
    /// Add the peer, or update it: its allowed IPs become exactly these.
    Upsert { public_key: Key, allowed_ips: Vec<Cidr> },
    Remove { public_key: Key },
}

/// The socket path of `iface` under `dir` (normally `/var/run/wireguard`).
pub fn socket_path(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("{iface}.sock"))
}

/// A handle on one interface's UAPI socket; every operation opens its own connection.
#[derive(Clone, Debug)]
pub struct Uapi {
    path: PathBuf,
}

impl Uapi {
    pub fn new(dir: &Path, iface: &str) -> Uapi {
        Uapi { path: socket_path(dir, iface) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the socket file exists (a userspace interface is running).
    pub fn exists(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok()
    }

    async fn exchange(&self, request: &str) -> Result<String, UapiError> {
        let io = |source| UapiError::Io { path: self.path.clone(), source };
        let mut s = match UnixStream::connect(&self.path).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(UapiError::NoSocket(self.path.clone())),
            Err(e) => return Err(io(e)),
        };
        s.write_all(request.as_bytes()).await.map_err(io)?;
        // The answer ends with an empty line; read until then (a get on thousands of peers is a few hundred KiB).
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 16384];
        loop {
            let n = s.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.ends_with(b"\n\n") {
                break;
            }
        }
        String::from_utf8(buf).map_err(|_| UapiError::Protocol("answer is not UTF-8".into()))
    }

    /// Reads the device and its peers.
    pub async fn get(&self) -> Result<Device, UapiError> {
        parse_get(&self.exchange("get=1\n\n").await?)
    }

    /// Applies one `set=1` operation: the device settings given, then the peer changes in order.
    pub async fn set(&self, private_key: Option<&Key>, listen_port: Option<u16>, peers: &[PeerSet]) -> Result<(), UapiError> {
        let req = render_set(private_key, listen_port, peers);
        parse_errno(&self.exchange(&req).await?)
    }

    pub async fn upsert_peer(&self, public_key: Key, allowed_ips: Vec<Cidr>) -> Result<(), UapiError> {
        self.set(None, None, &[PeerSet::Upsert { public_key, allowed_ips }]).await
    }

    pub async fn remove_peer(&self, public_key: Key) -> Result<(), UapiError> {
        self.set(None, None, &[PeerSet::Remove { public_key }]).await
    }
}

/// The text of a `set=1` request.
pub fn render_set(private_key: Option<&Key>, listen_port: Option<u16>, peers: &[PeerSet]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("set=1\n");
    if let Some(k) = private_key {
        let _ = writeln!(s, "private_key={}", k.to_hex());
    }
    if let Some(p) = listen_port {
        let _ = writeln!(s, "listen_port={p}");
    }
    for p in peers {
        match p {
            PeerSet::Upsert { public_key, allowed_ips } => {
                let _ = writeln!(s, "public_key={}", public_key.to_hex());
                s.push_str("replace_allowed_ips=true\n");
                for ip in allowed_ips {
                    let _ = writeln!(s, "allowed_ip={ip}");
                }
            }
            PeerSet::Remove { public_key } => {
                let _ = writeln!(s, "public_key={}\nremove=true", public_key.to_hex());
            }
        }
    }
    s.push('\n');
    s
}

/// The `errno=N` line that closes every answer: `Ok` for 0.
pub fn parse_errno(answer: &str) -> Result<(), UapiError> {
    for line in answer.lines() {
        if let Some(v) = line.strip_prefix("errno=") {
            let n: i64 = v.trim().parse().map_err(|_| UapiError::Protocol(format!("bad errno line {line:?}")))?;
            return if n == 0 { Ok(()) } else { Err(UapiError::Errno(n)) };
        }
    }
    Err(UapiError::Protocol("no errno line".into()))
}

/// Parses the answer to `get=1`. Unknown keys are skipped (implementations add some, e.g. `protocol_version`).
pub fn parse_get(answer: &str) -> Result<Device, UapiError> {
    let bad = |line: &str| UapiError::Protocol(format!("bad line {line:?}"));
    let mut dev = Device::default();
    let mut errno = None;
    let mut hs_sec: Option<i64> = None;
    // Closes the peer being read: its handshake is known only once both halves were seen.
    let finish = |dev: &mut Device, hs: &mut Option<i64>| {
        if let Some(p) = dev.peers.last_mut() {
            p.last_handshake = hs.take().filter(|s| *s > 0);
        }
    };
    for line in answer.lines() {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| bad(line))?;
        if k == "errno" {
            errno = Some(v.parse::<i64>().map_err(|_| bad(line))?);
            continue;
        }
        if k == "public_key" {
            finish(&mut dev, &mut hs_sec);
            let key = Key::from_hex(v).ok_or_else(|| bad(line))?;
            dev.peers.push(PeerInfo {
                public_key: key,
                endpoint: None,
                allowed_ips: Vec::new(),
                last_handshake: None,
                rx_bytes: 0,
                tx_bytes: 0,
                persistent_keepalive: 0,
            });
            continue;
        }
        match dev.peers.last_mut() {
            None => match k {
                "private_key" => dev.private_key = Some(Key::from_hex(v).ok_or_else(|| bad(line))?),
                "listen_port" => dev.listen_port = Some(v.parse().map_err(|_| bad(line))?),
                "fwmark" => dev.fwmark = Some(v.parse().map_err(|_| bad(line))?),
                _ => {}
            },
            Some(p) => match k {
                "endpoint" => p.endpoint = Some(v.to_owned()),
                "allowed_ip" => p.allowed_ips.push(v.parse().map_err(|_| bad(line))?),
                "last_handshake_time_sec" => hs_sec = Some(v.parse().map_err(|_| bad(line))?),
                "rx_bytes" => p.rx_bytes = v.parse().map_err(|_| bad(line))?,
                "tx_bytes" => p.tx_bytes = v.parse().map_err(|_| bad(line))?,
                "persistent_keepalive_interval" => p.persistent_keepalive = v.parse().map_err(|_| bad(line))?,
                _ => {}
            },
        }
    }
    finish(&mut dev, &mut hs_sec);
    match errno {
        Some(0) => Ok(dev),
        Some(n) => Err(UapiError::Errno(n)),
        None => Err(UapiError::Protocol("no errno line".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";
    const K2: &str = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";

    #[test]
    fn parses_a_device_with_peers() {
        let answer = format!(
            "private_key={K1}\nlisten_port=51820\npublic_key={K2}\npreshared_key=0000000000000000000000000000000000000000000000000000000000000000\n\
             protocol_version=1\nendpoint=10.250.0.2:40123\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n\
             tx_bytes=1234\nrx_bytes=5678\npersistent_keepalive_interval=0\nallowed_ip=10.8.0.2/32\nallowed_ip=fd00:8::2/128\n\
             public_key={K1}\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\nerrno=0\n\n"
        );
        let d = parse_get(&answer).unwrap();
        assert_eq!(d.private_key, Key::from_hex(K1));
        assert_eq!(d.listen_port, Some(51820));
        assert_eq!(d.peers.len(), 2);
        let p = &d.peers[0];
        assert_eq!(p.public_key, Key::from_hex(K2).unwrap());
        assert_eq!(p.endpoint.as_deref(), Some("10.250.0.2:40123"));
        assert_eq!(p.last_handshake, Some(1_700_000_000));
        assert_eq!((p.rx_bytes, p.tx_bytes), (5678, 1234));
        assert_eq!(p.allowed_ips, vec!["10.8.0.2/32".parse().unwrap(), "fd00:8::2/128".parse().unwrap()]);
        assert_eq!(d.peers[1].last_handshake, None, "0 means never");
        assert!(d.peers[1].allowed_ips.is_empty());
    }

    #[test]
    fn an_empty_device_and_errors() {
        assert_eq!(parse_get("errno=0\n\n").unwrap(), Device::default());
        assert!(matches!(parse_get("errno=2\n\n"), Err(UapiError::Errno(2))));
        assert!(matches!(parse_get("listen_port=1\n\n"), Err(UapiError::Protocol(_))));
        assert!(matches!(parse_get("public_key=zz\nerrno=0\n\n"), Err(UapiError::Protocol(_))));
        assert!(matches!(parse_get("garbage\nerrno=0\n\n"), Err(UapiError::Protocol(_))));
        assert!(parse_errno("errno=0\n\n").is_ok());
        assert!(matches!(parse_errno("errno=-22\n\n"), Err(UapiError::Errno(-22))));
    }

    #[test]
    fn renders_set_requests() {
        let k = Key::from_hex(K1).unwrap();
        let p = Key::from_hex(K2).unwrap();
        let s = render_set(
            Some(&k),
            Some(51820),
            &[
                PeerSet::Remove { public_key: k },
                PeerSet::Upsert { public_key: p, allowed_ips: vec!["10.8.0.9/32".parse().unwrap()] },
            ],
        );
        assert_eq!(
            s,
            format!(
                "set=1\nprivate_key={K1}\nlisten_port=51820\npublic_key={K1}\nremove=true\npublic_key={K2}\n\
                 replace_allowed_ips=true\nallowed_ip=10.8.0.9/32\n\n"
            )
        );
    }

    #[test]
    fn keys_round_trip_and_match_wg_pubkey() {
        // `echo yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk= | wg pubkey` (the example of wg(8)).
        let private = Key::from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").unwrap();
        assert_eq!(private.public().to_base64(), "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=");
        assert_eq!(Key::from_hex(&private.to_hex()), Some(private));
        assert_eq!(Key::from_base64("short"), None);
        assert_eq!(Key::from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm=="), None);
        let g = Key::generate();
        assert_eq!(g.0[0] & 7, 0);
        assert_eq!(g.0[31] & 0xc0, 0x40);
        assert_ne!(g, Key::generate());
    }

    #[test]
    fn cidrs_are_normalised() {
        let c: Cidr = "10.8.0.77/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.8.0.0/24");
        assert_eq!("fd00:8::2".parse::<Cidr>().unwrap().to_string(), "fd00:8::2/128");
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().to_string(), "0.0.0.0/0");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0/8".parse::<Cidr>().is_err());
        let big: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(big.contains(&"192.168.50.0/24".parse().unwrap()));
        assert!(!big.contains(&"192.169.0.0/24".parse().unwrap()));
        assert!(!big.contains(&"fd00::/64".parse().unwrap()));
        assert!(!"192.168.50.0/24".parse::<Cidr>().unwrap().contains(&big));
    }
}
