//! Access groups on the gateway host with nftables: one table `inet agilekit_<iface>` holding two sets of
//! (peer address . allowed destination) pairs; packets that arrive on the WireGuard interface and match no pair are
//! dropped (forward chain for the networks behind the gateway, input chain for the gateway host itself). Changes
//! are applied as element additions and deletions in one `nft -f` transaction, so a peer's access changes atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::uapi::Cidr;

/// The (source, destination) pairs allowed, per family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub v4: BTreeSet<(Cidr, Cidr)>,
    pub v6: BTreeSet<(Cidr, Cidr)>,
    /// The gateway's own VPN addresses: peers may always reach them (e.g. to ping the gateway).
    pub own: BTreeSet<IpAddr>,
}

impl Rules {
    /// Builds the pairs from each peer's source prefixes and allowed destinations. A destination contained in
    /// another destination of the same source is dropped (nftables refuses overlapping interval elements).
    pub fn build<'a>(peers: impl IntoIterator<Item = (&'a [Cidr], &'a [Cidr])>, own: impl IntoIterator<Item = IpAddr>) -> Rules {
        let mut by_src: BTreeMap<Cidr, Vec<Cidr>> = BTreeMap::new();
        for (srcs, dsts) in peers {
            for s in srcs {
                by_src.entry(*s).or_default().extend(dsts.iter().filter(|d| d.is_ipv4() == s.is_ipv4()).copied());
            }
        }
        let mut r = Rules { own: own.into_iter().collect(), ..Rules::default() };
        for (src, mut dsts) in by_src {
            dsts.sort_by_key(|d| d.prefix());
            dsts.dedup();
            let mut kept: Vec<Cidr> = Vec::new();
            for d in dsts {
                if !kept.iter().any(|k| k.contains(&d)) {
                    kept.push(d);
                }
            }
            let set = if src.is_ipv4() { &mut r.v4 } else { &mut r.v6 };
            set.extend(kept.into_iter().map(|d| (src, d)));
        }
        r
    }
}

/// Turns an interface name into an nft identifier (letters, digits, underscores).
pub fn table_name(iface: &str) -> String {
    let clean: String = iface.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("agilekit_{clean}")
}

fn elements(out: &mut String, set: &BTreeSet<(Cidr, Cidr)>) {
    let list: Vec<String> = set.iter().map(|(s, d)| format!("{s} . {d}")).collect();
    out.push_str(&list.join(", "));
}

/// The whole table, replacing whatever was there, as one transaction.
pub fn render_full(iface: &str, r: &Rules) -> String {
    let t = table_name(iface);
    let mut s = format!("table inet {t}\ndelete table inet {t}\ntable inet {t} {{\n");
    for (name, ty, set) in [("allow4", "ipv4_addr . ipv4_addr", &r.v4), ("allow6", "ipv6_addr . ipv6_addr", &r.v6)] {
        let _ = write!(s, "  set {name} {{\n    type {ty}\n    flags interval\n");
        if !set.is_empty() {
            s.push_str("    elements = { ");
            elements(&mut s, set);
            s.push_str(" }\n");
        }
        s.push_str("  }\n");
    }
    let own4: Vec<String> = r.own.iter().filter(|a| a.is_ipv4()).map(|a| a.to_string()).collect();
    let own6: Vec<String> = r.own.iter().filter(|a| a.is_ipv6()).map(|a| a.to_string()).collect();
    for (chain, hook) in [("forward", "forward"), ("input", "input")] {
        let _ = writeln!(s, "  chain {chain} {{\n    type filter hook {hook} priority filter; policy accept;");
        if hook == "input" {
            if !own4.is_empty() {
                let _ = writeln!(s, "    iifname \"{iface}\" ip daddr {{ {} }} accept", own4.join(", "));
            }
            if !own6.is_empty() {
                let _ = writeln!(s, "    iifname \"{iface}\" ip6 daddr {{ {} }} accept", own6.join(", "));
            }
        }
        let _ = writeln!(s, "    iifname \"{iface}\" ip saddr . ip daddr @allow4 accept");
        let _ = writeln!(s, "    iifname \"{iface}\" ip6 saddr . ip6 daddr @allow6 accept");
        let _ = writeln!(s, "    iifname \"{iface}\" counter drop\n  }}");
    }
    s.push_str("}\n");
    s
}

/// Only the element changes from `old` to `new`; `None` when the chains themselves must change (own addresses).
pub fn render_delta(iface: &str, old: &Rules, new: &Rules) -> Option<String> {
    if old.own != new.own {
        return None;
    }
    let t = table_name(iface);
    let mut s = String::new();
    for (name, o, n) in [("allow4", &old.v4, &new.v4), ("allow6", &old.v6, &new.v6)] {
        let gone: BTreeSet<_> = o.difference(n).copied().collect();
        let added: BTreeSet<_> = n.difference(o).copied().collect();
        if !gone.is_empty() {
            let _ = write!(s, "delete element inet {t} {name} {{ ");
            elements(&mut s, &gone);
            s.push_str(" }\n");
        }
        if !added.is_empty() {
            let _ = write!(s, "add element inet {t} {name} {{ ");
            elements(&mut s, &added);
            s.push_str(" }\n");
        }
    }
    Some(s)
}

/// Runs `nft -f -` with the script on standard input.
pub async fn run(script: &str) -> Result<(), String> {
    if script.is_empty() {
        return Ok(());
    }
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child.wait_with_output().await.map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether nftables can be used here: the binary runs and the kernel answers (`nft list tables`).
pub async fn probe() -> Result<(), String> {
    let out = tokio::process::Command::new("nft")
        .args(["list", "tables"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// Keeps the table of one interface in step with the desired rules, remembering what it applied.
pub struct Enforcer {
    iface: String,
    applied: Option<Rules>,
}

impl Enforcer {
    pub fn new(iface: &str) -> Enforcer {
        Enforcer { iface: iface.to_owned(), applied: None }
    }

    /// Applies `rules`: the element difference when the table is known, the whole table otherwise or when the
    /// difference fails (someone changed the table by hand). `true` when something was changed.
    pub async fn apply(&mut self, rules: &Rules) -> Result<bool, String> {
        if self.applied.as_ref() == Some(rules) {
            return Ok(false);
        }
        if let Some(old) = &self.applied
            && let Some(delta) = render_delta(&self.iface, old, rules)
        {
            match run(&delta).await {
                Ok(()) => {
                    self.applied = Some(rules.clone());
                    return Ok(true);
                }
                Err(e) => tracing::warn!(error = %e, "nftables: incremental change failed; rewriting the table"),
            }
        }
        self.applied = None;
        run(&render_full(&self.iface, rules)).await?;
        self.applied = Some(rules.clone());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn builds_pairs_per_family_without_nested_destinations() {
        let a_src = [c("10.8.0.2/32"), c("fd00:8::2/128")];
        let a_dst = [c("192.168.0.0/16"), c("192.168.50.0/24"), c("fd10::/48")];
        let b_src = [c("10.8.0.3/32")];
        let b_dst = [c("192.168.50.0/24"), c("192.168.50.0/24")];
        let r = Rules::build([(&a_src[..], &a_dst[..]), (&b_src[..], &b_dst[..])], ["10.8.0.1".parse().unwrap()]);
        assert_eq!(
            r.v4.iter().map(|(s, d)| format!("{s} . {d}")).collect::<Vec<_>>(),
            vec!["10.8.0.2/32 . 192.168.0.0/16", "10.8.0.3/32 . 192.168.50.0/24"]
        );
        assert_eq!(r.v6.len(), 1);
        assert_eq!(r.own.iter().next().unwrap().to_string(), "10.8.0.1");
    }

    #[test]
    fn renders_the_table_and_deltas() {
        let src = [c("10.8.0.2/32")];
        let dst = [c("192.168.50.0/24")];
        let r1 = Rules::build([(&src[..], &dst[..])], ["10.8.0.1".parse().unwrap()]);
        let full = render_full("wg-0", &r1);
        assert!(full.starts_with("table inet agilekit_wg_0\ndelete table inet agilekit_wg_0\n"));
        assert!(full.contains("elements = { 10.8.0.2/32 . 192.168.50.0/24 }"));
        assert!(full.contains("iifname \"wg-0\" ip daddr { 10.8.0.1 } accept"));
        assert!(full.contains("hook forward") && full.contains("hook input"));
        assert!(!full.contains("set allow6 {\n    type ipv6_addr . ipv6_addr\n    flags interval\n    elements"));

        let src2 = [c("10.8.0.3/32")];
        let r2 = Rules::build([(&src2[..], &dst[..])], ["10.8.0.1".parse().unwrap()]);
        assert_eq!(
            render_delta("wg-0", &r1, &r2).unwrap(),
            "delete element inet agilekit_wg_0 allow4 { 10.8.0.2/32 . 192.168.50.0/24 }\n\
             add element inet agilekit_wg_0 allow4 { 10.8.0.3/32 . 192.168.50.0/24 }\n"
        );
        assert_eq!(render_delta("wg-0", &r1, &r1).unwrap(), "");
        let r3 = Rules::build([(&src2[..], &dst[..])], ["10.9.0.1".parse().unwrap()]);
        assert_eq!(render_delta("wg-0", &r2, &r3), None, "own addresses change the chains");
    }
}
