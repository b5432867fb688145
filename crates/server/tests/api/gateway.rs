//! The gateway agent (`agilekit gateway`) against real WireGuard: wireguard-go in network namespaces.
//!
//! Two namespaces joined by a veth pair (10.250.0.0/24, only inside them): the gateway's, with wireguard-go driven by
//! the real `agilekit gateway` binary and the "internal" addresses 192.168.50.1 and 192.168.60.1 on its loopback;
//! and the client's, with wireguard-go set up from the wg-quick file the API hands out. The server runs in the test
//! process on the root namespace's loopback; a relay bound inside the gateway namespace's loopback lets
//! the agent reach it (and lets the test cut that link). The scenario runs once per agent backend: UAPI (chosen by
//! `--backend auto`, since wireguard-go has its socket) and `wg` (wireguard-tools, the path kernel WireGuard takes
//! through netlink; here `wg` reaches wireguard-go through its socket, as there is no kernel module to test with). Needs root, wireguard-go, wg, ip, ping and nft (scripts/test
//! installs them); everything is removed at the end, also when the test fails.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::both_engines;
use crate::helpers::{Options, TestApp};

const GW_ADDR: &str = "10.250.0.1";
const CL_ADDR: &str = "10.250.0.2";
/// Reachable for the device's access group.
const INTERNAL: &str = "192.168.50.1";
/// Routed by the gateway but outside the device's access group: nftables must drop it.
const FORBIDDEN: &str = "192.168.60.1";

fn require_root_and_tools() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_owned();
    assert_eq!(
        euid, "0",
        "the gateway test needs root (network namespaces, TUN devices, nftables): run it as root, as CI and scripts/test do"
    );
    for tool in ["wireguard-go", "wg", "ip", "ping", "nft"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || ["/usr/sbin", "/sbin", "/usr/bin"].iter().any(|d| std::path::Path::new(d).join(tool).is_file());
        assert!(found, "the gateway test needs `{tool}`: scripts/test installs wireguard-go, wireguard-tools, iproute2, iputils-ping and nftables");
    }
}

/// Runs a command to completion without blocking the runtime (the server under test shares it).
async fn run(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

async fn must(args: &[&str]) -> String {
    let out = run(args).await;
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Children get SIGKILL when the test process dies without unwinding (a runner's timeout), so no agent or
/// wireguard-go outlives it.
fn die_with_test(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// How the agent under test drives the gateway's interface.
#[derive(Clone, Copy, Debug)]
enum Drive {
    /// `--backend` left at `auto`: wireguard-go's socket exists, so the agent speaks UAPI to it.
    Auto,
    /// `--backend wg`: through wireguard-tools' `wg` (`show dump`, `set`, `addconf`).
    Wg,
}

impl Drive {
    fn arg(self) -> &'static str {
        match self {
            Drive::Auto => "auto",
            Drive::Wg => "wg",
        }
    }

    /// The backend the agent must say it chose.
    fn chosen(self) -> &'static str {
        match self {
            Drive::Auto => "uapi",
            Drive::Wg => "wg",
        }
    }
}

/// The namespaces, the processes and the files of one run; dropping it removes them all.
struct Lab {
    drive: Drive,
    gw_ns: String,
    cl_ns: String,
    gw_if: String,
    cl_if: String,
    dir: PathBuf,
    agent: Option<Child>,
    wg_gw: Option<Child>,
    wg_cl: Option<Child>,
}

impl Lab {
    async fn new(drive: Drive) -> Lab {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = std::env::temp_dir().join(format!("agilekit-gw-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            drive,
            gw_ns: format!("akgw-{id}"),
            cl_ns: format!("akcl-{id}"),
            // UAPI sockets live in one directory for all namespaces: the names must be unique per run.
            gw_if: format!("akg{id}"),
            cl_if: format!("akc{id}"),
            dir,
            agent: None,
            wg_gw: None,
            wg_cl: None,
        };
        let (g, c) = (lab.gw_ns.clone(), lab.cl_ns.clone());
        must(&["ip", "netns", "add", &g]).await;
        must(&["ip", "netns", "add", &c]).await;
        // The veth pair is created directly in the two namespaces: nothing appears in the host's.
        let (vg, vc) = (format!("akv{id}g"), format!("akv{id}c"));
        must(&["ip", "link", "add", &vg, "netns", &g, "type", "veth", "peer", "name", &vc, "netns", &c]).await;
        for (ns, dev, addr) in [(&g, &vg, GW_ADDR), (&c, &vc, CL_ADDR)] {
            must(&["ip", "-n", ns, "address", "add", &format!("{addr}/24"), "dev", dev]).await;
            must(&["ip", "-n", ns, "link", "set", dev, "up"]).await;
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]).await;
        }
        // The "internal" hosts are addresses of the gateway namespace itself (on its loopback: these kernels have no
        // dummy interfaces), so they stand in for the office network behind the concentrator.
        must(&["ip", "-n", &g, "address", "add", &format!("{INTERNAL}/32"), "dev", "lo"]).await;
        must(&["ip", "-n", &g, "address", "add", &format!("{FORBIDDEN}/32"), "dev", "lo"]).await;
        lab
    }

    fn sock(iface: &str) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{iface}.sock"))
    }

    /// Starts wireguard-go in the foreground inside `ns` and waits for its UAPI socket.
    async fn wireguard_go(&self, ns: &str, iface: &str) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{iface}.log"))).unwrap();
        let child = die_with_test(&mut Command::new("ip"))
            .args(["netns", "exec", ns, "wireguard-go", "-f", iface])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start wireguard-go");
        let t = Instant::now();
        while !Lab::sock(iface).exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "wireguard-go did not create {}", Lab::sock(iface).display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    fn start_agent(&mut self, server: &str, token: &str) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("agent.log")).unwrap();
        let child = die_with_test(&mut Command::new("ip"))
            .args(["netns", "exec", &self.gw_ns, env!("CARGO_BIN_EXE_agilekit"), "gateway"])
            .args(["--server", server, "--interface", &self.gw_if, "--status-secs", "2", "--backend", self.drive.arg()])
            .arg("--state-file")
            .arg(self.dir.join("state.json"))
            .arg("--private-key-file")
            .arg(self.dir.join("gw.key"))
            .env("AGILEKIT_GATEWAY_TOKEN", token)
            .env("AGILEKIT_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start agilekit gateway");
        self.agent = Some(child);
    }

    fn stop_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for a line of the agent's log (the test's clock on what the agent did).
    async fn wait_log(&self, needle: &str, within: Duration, from: usize) {
        let t = Instant::now();
        loop {
            let log = self.agent_log();
            if log.get(from..).unwrap_or("").contains(needle) {
                return;
            }
            assert!(t.elapsed() < within, "the agent did not log {needle:?} within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ping(&self, addr: &str) -> bool {
        run(&["ip", "netns", "exec", &self.cl_ns, "ping", "-n", "-q", "-c", "1", "-W", "1", addr]).await.status.success()
    }

    /// Pings until one answer comes back; panics after `within`.
    async fn wait_ping(&self, addr: &str, within: Duration) -> Duration {
        let t = Instant::now();
        while !self.ping(addr).await {
            assert!(t.elapsed() < within, "no answer from {addr} through the tunnel within {within:?}\n{}", self.dump().await);
        }
        t.elapsed()
    }

    /// `wg show` of both ends, for failure messages.
    async fn dump(&self) -> String {
        let g = run(&["wg", "show", &self.gw_if]).await;
        let c = run(&["wg", "show", &self.cl_if]).await;
        format!(
            "gateway:\n{}\nclient:\n{}\nagent log:\n{}",
            String::from_utf8_lossy(&g.stdout),
            String::from_utf8_lossy(&c.stdout),
            self.agent_log()
        )
    }

    /// Configures the client interface from the wg-quick file the API gave, with the device's real private key.
    /// `extra` widens the client's AllowedIPs and routes, as a user who edits the file would.
    async fn client_up(&self, wg_quick: &str, private_key: &str, extra: &[&str]) {
        let conf = WgQuick::parse(wg_quick);
        let mut allowed = conf.allowed_ips.clone();
        allowed.extend(extra.iter().map(|s| s.to_string()));
        let text = format!(
            "[Interface]\nPrivateKey = {private_key}\n\n[Peer]\nPublicKey = {}\nEndpoint = {}\nAllowedIPs = {}\nPersistentKeepalive = 25\n",
            conf.peer_public_key,
            conf.endpoint,
            allowed.join(", ")
        );
        let file = self.dir.join("client.conf");
        std::fs::write(&file, text).unwrap();
        let ns = &self.cl_ns;
        must(&["ip", "netns", "exec", ns, "wg", "setconf", &self.cl_if, file.to_str().unwrap()]).await;
        must(&["ip", "-n", ns, "address", "flush", "dev", &self.cl_if]).await;
        for a in conf.addresses.iter().filter(|a| !a.contains(':')) {
            must(&["ip", "-n", ns, "address", "add", a, "dev", &self.cl_if]).await;
        }
        must(&["ip", "-n", ns, "link", "set", &self.cl_if, "up"]).await;
        for r in allowed.iter().filter(|a| !a.contains(':')) {
            must(&["ip", "-n", ns, "route", "replace", r, "dev", &self.cl_if]).await;
        }
    }

    /// Waits until the enrolled key is a peer of the gateway's interface: an enrolment reaches it within 5 s.
    async fn wait_peer(&self, key: &str, since: Instant) {
        while !self.gateway_peers().await.contains(key) {
            assert!(since.elapsed() < Duration::from_secs(5), "the enrolled device is not on the gateway after 5 s\n{}", self.dump().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("enrolment reached the gateway after {:?}", since.elapsed());
    }

    async fn gateway_peers(&self) -> String {
        must(&["wg", "show", &self.gw_if, "peers"]).await
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("AGILEKIT_TEST_AGENT_LOG").is_some() {
            eprintln!("---- agent log ----\n{}", self.agent_log());
        }
        self.stop_agent();
        for c in [self.wg_gw.take(), self.wg_cl.take()].into_iter().flatten() {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.gw_ns, &self.cl_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
        for i in [&self.gw_if, &self.cl_if] {
            let _ = std::fs::remove_file(Lab::sock(i));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The parts of a wg-quick file the client set-up needs.
struct WgQuick {
    addresses: Vec<String>,
    peer_public_key: String,
    endpoint: String,
    allowed_ips: Vec<String>,
}

impl WgQuick {
    fn parse(text: &str) -> WgQuick {
        let mut w = WgQuick { addresses: vec![], peer_public_key: String::new(), endpoint: String::new(), allowed_ips: vec![] };
        let list = |v: &str| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let Some((k, v)) = line.split_once('=') else { continue };
            let v = v.trim();
            match k.trim() {
                "Address" => w.addresses.extend(list(v)),
                "PublicKey" => w.peer_public_key = v.to_owned(),
                "Endpoint" => w.endpoint = v.to_owned(),
                "AllowedIPs" => w.allowed_ips.extend(list(v)),
                _ => {}
            }
        }
        assert!(!w.addresses.is_empty() && !w.peer_public_key.is_empty() && !w.endpoint.is_empty(), "incomplete wg-quick file:\n{text}");
        w
    }
}

/// A TCP relay listening on the gateway namespace's loopback and forwarding to the server on the host's loopback.
/// `cut` drops every connection and refuses new ones (the network is gone); `restore` points it at a (new) server.
struct Relay {
    port: u16,
    target: Arc<Mutex<Option<String>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    fn start(ns: &str, target: String) -> Relay {
        let path = format!("/var/run/netns/{ns}");
        // setns affects only the calling thread: a short-lived thread binds the socket, which stays in that namespace.
        let listener = std::thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
            let f = std::fs::File::open(&path)?;
            // SAFETY: setns on a file descriptor we own, affecting only this thread, which ends right after.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .join()
        .unwrap()
        .expect("relay listener in the gateway namespace");
        let port = listener.local_addr().unwrap().port();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let target = Arc::new(Mutex::new(Some(target)));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (t, c) = (target.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let Some(dest) = t.lock().unwrap().clone() else { continue };
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(dest).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                let mut list = c.lock().unwrap();
                list.retain(|h| !h.is_finished());
                list.push(h);
            }
        });
        Relay { port, target, conns, accept }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        *self.target.lock().unwrap() = None;
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn restore(&self, target: String) {
        *self.target.lock().unwrap() = Some(target);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_owned()
}

async fn keypair() -> (String, String) {
    let private = must(&["wg", "genkey"]).await;
    let mut child = tokio::process::Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    child.stdin.take().unwrap().write_all(format!("{private}\n").as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    (private, String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

async fn post(c: &reqwest::Client, url: String, body: Value, want: u16) -> Value {
    let r = c.post(&url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, want, "POST {url} {body} answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Enrols a device for the employee with their own public key: (device id, wg-quick text).
async fn enrol(app: &TestApp, employee: &reqwest::Client, org: &str, network: &str, name: &str, public_key: &str) -> (String, String) {
    let d = post(
        employee,
        app.at(&format!("/api/v1/orgs/{org}/vpn/devices")),
        json!({"name": name, "network_id": network, "public_key": public_key}),
        201,
    )
    .await;
    assert_eq!(d["state"], "active", "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    let r = employee.get(app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{id}/config"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.lines().any(|l| l.starts_with("PrivateKey")), "the server never had the private key:\n{text}");
    (id, text)
}

/// Revokes, then pings once a second until the tunnel stops passing traffic: the time that took.
async fn revoke_and_time_cut(lab: &Lab, c: &reqwest::Client, url: String) -> Duration {
    let t = Instant::now();
    let d = post(c, url, json!({}), 200).await;
    assert_eq!(d["state"], "revoked", "{d}");
    while lab.ping(INTERNAL).await {
        assert!(t.elapsed() < Duration::from_secs(10), "the revoked device still passes traffic after 10 s\n{}", lab.dump().await);
    }
    let took = t.elapsed();
    for _ in 0..2 {
        assert!(!lab.ping(INTERNAL).await, "a revoked device got an answer again");
    }
    took
}

async fn tunnel(mut app: TestApp, drive: Drive) -> TestApp {
    require_root_and_tools();
    let start = Instant::now();
    let phase = |name: &str| eprintln!("[{:>6.2?}] {name}", start.elapsed());
    let mut lab = Lab::new(drive).await;
    lab.wg_gw = Some(lab.wireguard_go(&lab.gw_ns, &lab.gw_if).await);
    lab.wg_cl = Some(lab.wireguard_go(&lab.cl_ns, &lab.cl_if).await);

    // The gateway's key is made by the agent itself; its public half registers the gateway.
    let out = Command::new(env!("CARGO_BIN_EXE_agilekit"))
        .args(["gateway", "--interface", &lab.gw_if, "--show-public-key", "--private-key-file"])
        .arg(lab.dir.join("gw.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gw_public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(gw_public.len(), 44, "a base64 key: {gw_public}");

    phase("set-up done");
    // The organisation's administrator sets up a network, its gateway and one access group.
    let org = app.org_id("r_lombar").await.to_string();
    let admin = app.login("admin@regione.example").await;
    let net = post(
        &admin,
        app.at(&format!("/api/v1/orgs/{org}/vpn/networks")),
        json!({"name": "Sede di Milano", "ipv4_cidr": "10.8.0.0/19", "ipv6_cidr": null, "dns": []}),
        201,
    )
    .await;
    let net_id = net["id"].as_str().unwrap().to_owned();
    let gw = post(
        &admin,
        app.at(&format!("/api/v1/orgs/{org}/vpn/networks/{net_id}/gateways")),
        json!({"name": "Concentratore", "endpoint": GW_ADDR, "port": 51820, "public_key": gw_public,
               "routes": ["192.168.50.0/24", "192.168.60.0/24"]}),
        201,
    )
    .await;
    let token = gw["token"].as_str().expect("the token is shown once").to_owned();
    let group = post(
        &admin,
        app.at(&format!("/api/v1/orgs/{org}/vpn/networks/{net_id}/access-groups")),
        json!({"name": "Uffici", "roles": ["employee"], "accounts": [], "allow": ["192.168.50.0/24"]}),
        201,
    )
    .await;
    let group_url = app.at(&format!("/api/v1/orgs/{org}/vpn/networks/{net_id}/access-groups/{}", group["id"].as_str().unwrap()));

    phase("API set-up done");
    // A wrong token is refused, and the agent says so.
    let relay = Relay::start(&lab.gw_ns, host_port(&app.url));
    lab.start_agent(&relay.url(), "not-the-token");
    lab.wait_log("refused the gateway token", Duration::from_secs(15), 0).await;
    lab.stop_agent();

    lab.start_agent(&relay.url(), &token);
    lab.wait_log("enforcement=\"nftables\"", Duration::from_secs(10), 0).await;
    lab.wait_log(&format!("backend=\"{}\"", drive.chosen()), Duration::from_secs(1), 0).await;
    let t = Instant::now();
    while must(&["wg", "show", &lab.gw_if, "listen-port"]).await != "51820" {
        assert!(t.elapsed() < Duration::from_secs(10), "the agent did not configure the interface\n{}", lab.dump().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(must(&["wg", "show", &lab.gw_if, "public-key"]).await, gw_public);

    phase("agent configured the interface");
    // The employee enrols a laptop with a key made on the laptop.
    let employee = app.login("dipendente@regione.example").await;
    let (priv1, pub1) = keypair().await;
    let t = Instant::now();
    let (dev1, conf1) = enrol(&app, &employee, &org, &net_id, "Portatile", &pub1).await;
    lab.wait_peer(&pub1, t).await;
    lab.client_up(&conf1, &priv1, &["192.168.60.0/24"]).await;
    let first = lab.wait_ping(INTERNAL, Duration::from_secs(15)).await;
    eprintln!("first answer through the tunnel after {first:?}");
    assert!(lab.gateway_peers().await.contains(&pub1));

    phase("tunnel works");
    // Outside the access group: the client routes it into the tunnel, the gateway's nftables drops it.
    for _ in 0..2 {
        assert!(!lab.ping(FORBIDDEN).await, "192.168.60.1 is outside the device's access group");
    }
    let table = must(&["ip", "netns", "exec", &lab.gw_ns, "nft", "list", "table", "inet", &format!("agilekit_{}", lab.gw_if)]).await;
    assert!(table.contains("192.168.50.0/24") && !table.contains("192.168.60.0/24"), "{table}");
    // The group widened: reachable within 5 s; narrowed again: dropped within 5 s.
    let put_group = |allow: Value| {
        let admin = admin.clone();
        let url = group_url.clone();
        async move {
            let r = admin
                .put(&url)
                .json(&json!({"name": "Uffici", "roles": ["employee"], "accounts": [], "allow": allow}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    put_group(json!(["192.168.50.0/24", "192.168.60.0/24"])).await;
    lab.wait_ping(FORBIDDEN, Duration::from_secs(5)).await;
    put_group(json!(["192.168.50.0/24"])).await;
    let t = Instant::now();
    while lab.ping(FORBIDDEN).await {
        assert!(t.elapsed() < Duration::from_secs(5), "a narrowed access group still lets 192.168.60.1 through");
    }
    assert!(lab.ping(INTERNAL).await, "the rest of the group's access is untouched");

    // The agent reports handshakes and traffic: the device shows as connected, with bytes, on the server.
    let t = Instant::now();
    loop {
        let r = employee.get(app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{dev1}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let d: Value = r.json().await.unwrap();
        if d["connected"] == true && d["rx_bytes"].as_i64().unwrap_or(0) > 0 && d["last_handshake_at"].is_string() {
            assert!(d["endpoint"].as_str().unwrap_or("").starts_with(CL_ADDR), "{d}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no status report reached the server: {d}\n{}", lab.agent_log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Revoked: the tunnel stops passing traffic within 5 s.
    let took = revoke_and_time_cut(&lab, &employee, app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{dev1}/revoke"))).await;
    eprintln!("revocation cut the tunnel after {took:?}");
    assert!(took < Duration::from_secs(5), "revocation took {took:?}");
    assert!(!lab.gateway_peers().await.contains(&pub1));

    phase("revoked");
    // Re-enrolled with a new key (a removed and re-added key would wait WireGuard's ~14 s rekey): works again.
    let (priv2, pub2) = keypair().await;
    let t = Instant::now();
    let (dev2, conf2) = enrol(&app, &employee, &org, &net_id, "Portatile nuovo", &pub2).await;
    lab.wait_peer(&pub2, t).await;
    lab.client_up(&conf2, &priv2, &[]).await;
    lab.wait_ping(INTERNAL, Duration::from_secs(15)).await;

    phase("re-enrolled, tunnel works");
    // The server goes away: the tunnel stays up.
    relay.cut();
    app.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..3 {
        assert!(lab.ping(INTERNAL).await, "the tunnel must survive the server's absence");
    }
    phase("tunnel up without the server");
    // Worse: the gateway host restarts (agent and wireguard-go) while the server is still away. The agent restores
    // the key, port, peers, addresses and access rules from its state file.
    lab.stop_agent();
    if let Some(mut c) = lab.wg_gw.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    // Killed, wireguard-go leaves its socket file behind (a new one replaces it; removing it makes the wait exact).
    let _ = std::fs::remove_file(Lab::sock(&lab.gw_if));
    lab.wg_gw = Some(lab.wireguard_go(&lab.gw_ns, &lab.gw_if).await);
    let log_mark = lab.agent_log().len();
    lab.start_agent(&relay.url(), &token);
    lab.wait_log("from=\"state file\"", Duration::from_secs(20), log_mark).await;
    assert!(lab.gateway_peers().await.contains(&pub2), "the stored peer set is applied without the server");
    // The client notices the new gateway session at its next rekey; re-applying its configuration starts one now.
    lab.client_up(&conf2, &priv2, &["192.168.60.0/24"]).await;
    lab.wait_ping(INTERNAL, Duration::from_secs(15)).await;
    assert!(!lab.ping(FORBIDDEN).await, "access rules are restored from the state file too");

    phase("restored from the state file");
    // The server is back (a new process on the same database): the agent reconciles, and revocations work again.
    let log_mark = lab.agent_log().len();
    app.restart(Options::default()).await;
    relay.restore(host_port(&app.url));
    // The first report that goes through also ends the agent's backoff: its long-poll is parked again right away.
    lab.wait_log("status reports go through again", Duration::from_secs(15), log_mark).await;
    let employee = app.login("dipendente@regione.example").await;
    let took = revoke_and_time_cut(&lab, &employee, app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{dev2}/revoke"))).await;
    assert!(took < Duration::from_secs(5), "revocation after the server's restart took {took:?}");
    assert!(lab.gateway_peers().await.is_empty(), "no peer left on the gateway");

    phase("revoked after restart");
    drop(relay);
    drop(lab);
    app
}

both_engines!(wireguard_tunnel_follows_enrolment_revocation_and_outages, |app| async move { tunnel(app, Drive::Auto).await });
both_engines!(wireguard_tunnel_through_the_wg_backend, |app| async move { tunnel(app, Drive::Wg).await });
