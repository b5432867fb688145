//! Driving a WireGuard interface through `wg` (wireguard-tools), which speaks netlink to kernel WireGuard and UAPI to
//! userspace implementations: the gateway agent's backend for hosts with the kernel module.
//!
//! Reading is one `wg show <iface> dump`. A batch of changes is at most two kinds of process, never one per peer:
//! `wg set <iface> peer K remove …` for removals (split only past [`SET_ARGS_BUDGET`] bytes of arguments), then one
//! `wg addconf <iface> /dev/stdin` carrying the private key, the listen port and every added or updated peer (a
//! `[Peer]` section replaces that peer's allowed IPs). The configuration travels through a pipe: the private key never
//! appears on a command line, so `ps` does not show it. (`wg syncconf` with the whole desired file would let `wg` diff
//! by itself, but the agent reads the interface anyway; measured on wireguard-go with 5,000 peers, one change by
//! `wg set`/`addconf` after the agent's own read took 30–45 ms, `syncconf` 40–65 ms.)

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::uapi::{Cidr, Device, Key, PeerInfo, PeerSet};

/// Past this many bytes of `wg set` arguments a batch of removals is split over several runs, far below the kernel's
/// limit on a command line (`ARG_MAX`, 2 MiB with the default stack limit): about 1,100 peers per run.
pub const SET_ARGS_BUDGET: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WgError {
    #[error("cannot run `{program}` (install wireguard-tools): {source}")]
    Spawn { program: String, source: std::io::Error },
    /// `wg` ran and failed: e.g. no such interface (`Unable to access interface: No such device`), or no WireGuard
    /// support in the kernel (`Protocol not supported`).
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("`wg show {iface} dump`: {reason}")]
    Dump { iface: String, reason: String },
}

/// A handle on one interface through the `wg` program.
#[derive(Clone, Debug)]
pub struct WgTool {
    iface: String,
    program: String,
}

impl WgTool {
    pub fn new(iface: &str) -> WgTool {
        WgTool { iface: iface.to_owned(), program: "wg".to_owned() }
    }

    /// Runs `wg` with `args`, feeding `input` on standard input; answers its standard output.
    async fn run(&self, args: &[String], input: Option<&[u8]>) -> Result<Vec<u8>, WgError> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| WgError::Spawn { program: self.program.clone(), source })?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            // A write error (wg exited early) shows as its exit status and message below.
            let _ = stdin.write_all(data).await;
            drop(stdin);
        }
        let out = child.wait_with_output().await.map_err(|source| WgError::Spawn { program: self.program.clone(), source })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let mut command = format!("{} {}", self.program, args.iter().take(3).cloned().collect::<Vec<_>>().join(" "));
        if args.len() > 3 {
            command.push_str(" …");
        }
        Err(WgError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().chars().take(500).collect(),
        })
    }

    /// Reads the device and its peers (`wg show <iface> dump`).
    pub async fn get(&self) -> Result<Device, WgError> {
        let out = self.run(&["show".into(), self.iface.clone(), "dump".into()], None).await?;
        let text = String::from_utf8(out).map_err(|_| WgError::Dump { iface: self.iface.clone(), reason: "not UTF-8".into() })?;
        parse_dump(&text).map_err(|reason| WgError::Dump { iface: self.iface.clone(), reason })
    }

    /// Applies the device settings given and the peer changes: removals (and peers left without allowed IPs) first,
    /// then the rest, as the agent's diff orders them (a key appears once per batch).
    pub async fn set(&self, private_key: Option<&Key>, listen_port: Option<u16>, peers: &[PeerSet]) -> Result<(), WgError> {
        let batch = Batch::plan(&self.iface, private_key, listen_port, peers);
        for args in &batch.set_runs {
            self.run(args, None).await?;
        }
        if let Some(conf) = &batch.addconf {
            let args = ["addconf".into(), self.iface.clone(), "/dev/stdin".into()];
            self.run(&args, Some(conf.as_bytes())).await?;
        }
        Ok(())
    }
}

/// The processes one batch of changes takes (no I/O: see [`WgTool::set`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Batch {
    /// Argument lists of `wg set` runs: removals, and updates that leave a peer without allowed IPs (a
    /// configuration file cannot say "none").
    pub set_runs: Vec<Vec<String>>,
    /// The configuration for `wg addconf <iface> /dev/stdin`: `[Interface]` with the private key and listen port
    /// when they change, and one `[Peer]` per added or updated peer.
    pub addconf: Option<String>,
}

/// Holds the private key: only the number of runs and whether a configuration is piped.
impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("set_runs", &self.set_runs.len()).field("addconf", &self.addconf.as_ref().map(String::len)).finish()
    }
}

impl Batch {
    pub fn plan(iface: &str, private_key: Option<&Key>, listen_port: Option<u16>, peers: &[PeerSet]) -> Batch {
        use std::fmt::Write as _;
        let head = || vec!["set".to_owned(), iface.to_owned()];
        let mut set_runs: Vec<Vec<String>> = Vec::new();
        let mut current = head();
        let mut bytes = 0usize;
        let mut conf = String::new();
        if private_key.is_some() || listen_port.is_some() {
            conf.push_str("[Interface]\n");
            if let Some(k) = private_key {
                let _ = writeln!(conf, "PrivateKey = {k}");
            }
            if let Some(p) = listen_port {
                let _ = writeln!(conf, "ListenPort = {p}");
            }
        }
        for p in peers {
            let args: Vec<String> = match p {
                PeerSet::Remove { public_key } => vec!["peer".into(), public_key.to_base64(), "remove".into()],
                PeerSet::Upsert { public_key, allowed_ips } if allowed_ips.is_empty() => {
                    vec!["peer".into(), public_key.to_base64(), "allowed-ips".into(), String::new()]
                }
                PeerSet::Upsert { public_key, allowed_ips } => {
                    let ips: Vec<String> = allowed_ips.iter().map(Cidr::to_string).collect();
                    let _ = write!(conf, "\n[Peer]\nPublicKey = {public_key}\nAllowedIPs = {}\n", ips.join(", "));
                    continue;
                }
            };
            let size: usize = args.iter().map(|a| a.len() + 1).sum();
            if bytes + size > SET_ARGS_BUDGET && current.len() > 2 {
                set_runs.push(std::mem::replace(&mut current, head()));
                bytes = 0;
            }
            bytes += size;
            current.extend(args);
        }
        if current.len() > 2 {
            set_runs.push(current);
        }
        Batch { set_runs, addconf: (!conf.is_empty()).then_some(conf) }
    }
}

/// Parses `wg show <iface> dump`: a first line `private-key public-key listen-port fwmark`, then one line per peer
/// `public-key preshared-key endpoint allowed-ips latest-handshake rx tx persistent-keepalive`, tab-separated, with
/// `(none)` and `off` for unset values and 0 for "never".
pub fn parse_dump(text: &str) -> Result<Device, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().ok_or("empty output")?;
    let f: Vec<&str> = first.split('\t').collect();
    if f.len() != 4 {
        return Err(format!("interface line with {} fields, expected 4", f.len()));
    }
    let key = |s: &str, what: &str| -> Result<Option<Key>, String> {
        if s == "(none)" { Ok(None) } else { Key::from_base64(s).map(Some).ok_or_else(|| format!("bad {what} {s:?}")) }
    };
    let mut dev = Device {
        private_key: key(f[0], "private key")?,
        listen_port: match f[2].parse::<u16>().map_err(|_| format!("bad listen port {:?}", f[2]))? {
            0 => None,
            p => Some(p),
        },
        fwmark: parse_fwmark(f[3])?,
        peers: Vec::new(),
    };
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 8 {
            return Err(format!("peer line with {} fields, expected 8", f.len()));
        }
        let public_key = key(f[0], "public key")?.ok_or("a peer without public key")?;
        let allowed_ips = if f[3] == "(none)" {
            Vec::new()
        } else {
            f[3].split(',').map(|c| c.parse::<Cidr>()).collect::<Result<Vec<_>, _>>()?
        };
        let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| format!("bad {what} {s:?}"));
        let hs = num(f[4], "latest handshake")?;
        dev.peers.push(PeerInfo {
            public_key,
            endpoint: (f[2] != "(none)").then(|| f[2].to_owned()),
            allowed_ips,
            last_handshake: (hs > 0).then_some(hs as i64),
            rx_bytes: num(f[5], "rx bytes")?,
            tx_bytes: num(f[6], "tx bytes")?,
            persistent_keepalive: if f[7] == "off" { 0 } else { f[7].parse().map_err(|_| format!("bad keepalive {:?}", f[7]))? },
        });
    }
    Ok(dev)
}

fn parse_fwmark(s: &str) -> Result<Option<u32>, String> {
    let bad = || format!("bad fwmark {s:?}");
    match s {
        "off" | "0" => Ok(None),
        _ => match s.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).map(Some).map_err(|_| bad()),
            None => s.parse().map(Some).map_err(|_| bad()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of `wg show <iface> dump` (wireguard-tools v1.0.20210914 on wireguard-go 0.0.20220316): a gateway
    /// with fwmark 0x2a, a connected peer with a preshared key over IPv6 and an idle one; the client end with a
    /// keepalive; a fresh interface. The keys were throwaway.
    const GATEWAY: &str = "IGxCoq2qFUOvsXYizIlMSpaVONLIT/6pdPeWSakFdEg=\t/AXiOFGQpqOy1FuOCUBIzsR0Ok3dWNoPkkAakNVkxAk=\t51820\t0x2a\n\
        nYCfkMg3rgfjLlnKyrb2MH9ylCD9Ovk896YAbqlAChQ=\tN2Oamjn++nHMiPjR48t2vK9t/0ePHlOg348rmL6nXlo=\t[fd51::2]:50210\t10.9.0.2/32,fd09::2/128\t1795708896\t436\t348\toff\n\
        6TEEVM4amypoegMIos6l+RAaRlD02ba0m7CbNN2NuGg=\t(none)\t(none)\t10.9.0.3/32\t0\t0\t0\toff\n";
    const CLIENT: &str = "AOrhQJRuwK+20ah3HMCLP1Mh/egltPITtPWCnBQCLnY=\tnYCfkMg3rgfjLlnKyrb2MH9ylCD9Ovk896YAbqlAChQ=\t50210\toff\n\
        /AXiOFGQpqOy1FuOCUBIzsR0Ok3dWNoPkkAakNVkxAk=\tN2Oamjn++nHMiPjR48t2vK9t/0ePHlOg348rmL6nXlo=\t[fd51::1]:51820\t10.9.0.0/24\t1795708896\t348\t436\t25\n";
    const FRESH: &str = "(none)\t(none)\t34485\toff\n";

    fn k(s: &str) -> Key {
        Key::from_base64(s).unwrap()
    }

    #[test]
    fn parses_real_dumps() {
        let d = parse_dump(GATEWAY).unwrap();
        let private = k("IGxCoq2qFUOvsXYizIlMSpaVONLIT/6pdPeWSakFdEg=");
        assert_eq!(d.private_key, Some(private));
        assert_eq!(private.public(), k("/AXiOFGQpqOy1FuOCUBIzsR0Ok3dWNoPkkAakNVkxAk="), "the second field is its public key");
        assert_eq!((d.listen_port, d.fwmark), (Some(51820), Some(42)));
        assert_eq!(d.peers.len(), 2);
        let p = &d.peers[0];
        assert_eq!(p.public_key, k("nYCfkMg3rgfjLlnKyrb2MH9ylCD9Ovk896YAbqlAChQ="));
        assert_eq!(p.endpoint.as_deref(), Some("[fd51::2]:50210"));
        assert_eq!(p.allowed_ips, vec!["10.9.0.2/32".parse().unwrap(), "fd09::2/128".parse().unwrap()]);
        assert_eq!((p.last_handshake, p.rx_bytes, p.tx_bytes, p.persistent_keepalive), (Some(1_795_708_896), 436, 348, 0));
        let idle = &d.peers[1];
        assert_eq!((idle.endpoint.as_deref(), idle.last_handshake, idle.rx_bytes), (None, None, 0), "(none) and 0 mean unset");

        let c = parse_dump(CLIENT).unwrap();
        assert_eq!((c.listen_port, c.fwmark), (Some(50210), None));
        assert_eq!(c.peers[0].persistent_keepalive, 25);
        assert_eq!(c.peers[0].allowed_ips, vec!["10.9.0.0/24".parse().unwrap()]);
        assert_eq!((c.peers[0].rx_bytes, c.peers[0].tx_bytes), (348, 436), "each end's rx is the other's tx");

        assert_eq!(parse_dump(FRESH).unwrap(), Device { listen_port: Some(34485), ..Device::default() });
        // A peer whose allowed IPs were all taken by another.
        let none = format!("{FRESH}{}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n", private.public());
        assert!(parse_dump(&none).unwrap().peers[0].allowed_ips.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_dump() {
        for bad in [
            "",
            "interface: wg0\n  public key: x\n",
            "(none)\t(none)\t70000\toff\n",
            "(none)\t(none)\t1\tbanana\n",
            "(none)\t(none)\t1\toff\nshort\tline\n",
            "(none)\t(none)\t1\toff\nnotakey\t(none)\t(none)\t(none)\t0\t0\t0\toff\n",
            "(none)\t(none)\t1\toff\nnYCfkMg3rgfjLlnKyrb2MH9ylCD9Ovk896YAbqlAChQ=\t(none)\t(none)\t10.9.0.300/32\t0\t0\t0\toff\n",
            "(none)\t(none)\t1\toff\nnYCfkMg3rgfjLlnKyrb2MH9ylCD9Ovk896YAbqlAChQ=\t(none)\t(none)\t(none)\t-1\t0\t0\toff\n",
        ] {
            assert!(parse_dump(bad).is_err(), "{bad:?}");
        }
    }

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn ips(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_batch_is_one_set_for_removals_and_one_piped_addconf() {
        let private = key(7);
        let b = Batch::plan(
            "wg0",
            Some(&private),
            Some(51820),
            &[
                PeerSet::Remove { public_key: key(1) },
                PeerSet::Remove { public_key: key(2) },
                PeerSet::Upsert { public_key: key(3), allowed_ips: ips(&["10.8.0.9/32"]) },
                PeerSet::Upsert { public_key: key(4), allowed_ips: ips(&["10.8.0.3/32", "fd00:8::3/128"]) },
                PeerSet::Upsert { public_key: key(5), allowed_ips: vec![] },
            ],
        );
        assert_eq!(
            b.set_runs,
            vec![vec![
                "set".to_owned(),
                "wg0".into(),
                "peer".into(),
                key(1).to_base64(),
                "remove".into(),
                "peer".into(),
                key(2).to_base64(),
                "remove".into(),
                "peer".into(),
                key(5).to_base64(),
                "allowed-ips".into(),
                "".into(),
            ]]
        );
        assert_eq!(
            b.addconf.as_deref().unwrap(),
            format!(
                "[Interface]\nPrivateKey = {private}\nListenPort = 51820\n\n[Peer]\nPublicKey = {}\nAllowedIPs = 10.8.0.9/32\n\n\
                 [Peer]\nPublicKey = {}\nAllowedIPs = 10.8.0.3/32, fd00:8::3/128\n",
                key(3),
                key(4)
            )
        );
        assert!(
            !b.set_runs.concat().iter().any(|a| a.contains(&private.to_base64())),
            "the private key is never an argument"
        );
        assert!(!format!("{b:?}").contains(&private.to_base64()), "nor in debug output");
        // Only a revocation: one `wg set`, nothing piped. Only the port: nothing but the piped [Interface].
        let r = Batch::plan("wg0", None, None, &[PeerSet::Remove { public_key: key(1) }]);
        assert_eq!((r.set_runs.len(), r.addconf), (1, None));
        let p = Batch::plan("wg0", None, Some(1), &[]);
        assert_eq!((p.set_runs.len(), p.addconf.as_deref()), (0, Some("[Interface]\nListenPort = 1\n")));
        assert_eq!(Batch::plan("wg0", None, None, &[]), Batch { set_runs: vec![], addconf: None });
    }

    #[test]
    fn thousands_of_changes_take_few_processes() {
        let keys: Vec<Key> = (0..5000u32).map(|i| Key(rand_key(i))).collect();
        let adds: Vec<PeerSet> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| PeerSet::Upsert { public_key: *k, allowed_ips: ips(&[&format!("10.8.{}.{}/32", i / 256, i % 256)]) })
            .collect();
        let b = Batch::plan("wg0", None, None, &adds);
        assert!(b.set_runs.is_empty());
        assert_eq!(b.addconf.unwrap().matches("[Peer]").count(), 5000, "5,000 additions are one addconf");

        let removals: Vec<PeerSet> = keys.iter().map(|k| PeerSet::Remove { public_key: *k }).collect();
        let b = Batch::plan("wg0", None, None, &removals);
        assert_eq!(b.set_runs.len(), 5, "5,000 removals in runs of about 1,100");
        let mut seen = 0;
        for run in &b.set_runs {
            assert_eq!(&run[..2], ["set", "wg0"]);
            assert!(run.iter().map(|a| a.len() + 1).sum::<usize>() <= SET_ARGS_BUDGET + 32);
            assert_eq!((run.len() - 2) % 3, 0, "a peer's arguments are never split over two runs");
            seen += (run.len() - 2) / 3;
        }
        assert_eq!(seen, 5000);
    }

    fn rand_key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k
    }
}
