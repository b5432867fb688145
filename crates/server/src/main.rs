//! `agilekit`: the command line. `serve` runs everything; the other commands are for set-up and operations.

use std::io::BufRead;
use std::path::PathBuf;

use agilekit_kernel::audit::{self, Actor, Verdict};
use agilekit_kernel::identity::{self, NewAccount, Role};
use agilekit_kernel::tenancy::{self, OrgInput};
use agilekit_server::{Config, demo, open_db, shutdown_signal, start};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "agilekit", version, about = "The smart-working kit for public administrations")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// A TOML configuration file (optional: the defaults need none).
    #[arg(long, global = true, env = "AGILEKIT_CONFIG")]
    config: Option<PathBuf>,
    /// Where the SQLite file lives (default ./agilekit-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` to run on PostgreSQL instead of the embedded SQLite file.
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the background workers.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
        #[arg(long)]
        listen: Option<String>,
        /// Seed demo organisations and accounts on the first start, and print the logins.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// First set-up: create the operator organisation and its first platform administrator.
    Init {
        #[arg(long)]
        operator_name: String,
        #[arg(long)]
        ipa_code: String,
        #[arg(long)]
        tax_code: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: String,
    },
    /// Accounts from the shell.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The VPN gateway agent: keeps a WireGuard interface's peers and access rules in step with the server.
    #[command(long_about = GATEWAY_ABOUT)]
    Gateway(GatewayArgs),
}

const GATEWAY_ABOUT: &str = "The VPN gateway agent, run on the WireGuard concentrator. It long-polls the server for \
the gateway's peer set, applies only the per-peer differences to the interface, enforces access groups with nftables \
(table inet agilekit_<iface>; without a working nft it says at start and in its status reports that access groups are \
NOT enforced), and reports each peer's last handshake and traffic. It keeps the last applied configuration in the \
state file and keeps the tunnel up while the server is unreachable.\n\n\
Backends (--backend): `uapi` speaks to userspace WireGuard (wireguard-go, boringtun) through its UAPI socket \
<uapi-dir>/<iface>.sock; `wg` runs wireguard-tools' `wg`, which reaches kernel WireGuard through netlink (and a \
userspace one through its socket). `auto` (the default) takes the socket when it exists, else `wg` when `wg show <iface>` \
works. Create the interface first: `wireguard-go wg0`, or `ip link add wg0 type wireguard` with the kernel module. \
First run: `agilekit gateway --interface wg0 --show-public-key` creates the private key and prints the public key to \
register the gateway with; the token shown at registration goes in --token or AGILEKIT_GATEWAY_TOKEN.";

#[derive(Args)]
struct GatewayArgs {
    /// Base URL of the agilekit server, e.g. https://agilekit.example.org
    #[arg(long, required_unless_present = "show_public_key")]
    server: Option<String>,
    /// The gateway token shown once when the gateway was registered.
    #[arg(long, env = "AGILEKIT_GATEWAY_TOKEN", hide_env_values = true, required_unless_present = "show_public_key")]
    token: Option<String>,
    /// The WireGuard interface (it must exist: kernel WireGuard, or wireguard-go/boringtun with its UAPI socket).
    #[arg(long, default_value = "wg0")]
    interface: String,
    /// Where the last applied configuration is kept [default: /var/lib/agilekit/gateway-<iface>.json]
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// The interface's private key, base64 as `wg genkey` writes it; created (0600) when missing
    /// [default: /etc/agilekit/gateway-<iface>.key]
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// The directory of WireGuard UAPI sockets (the uapi backend; `wg` has /var/run/wireguard built in).
    #[arg(long, default_value = "/var/run/wireguard")]
    uapi_dir: PathBuf,
    /// How to drive the interface: auto (the UAPI socket when it exists, else `wg`), uapi (userspace WireGuard's
    /// socket), wg (wireguard-tools: netlink for kernel WireGuard, the socket for userspace).
    #[arg(long, default_value = "auto")]
    backend: agilekit_remote_access::agent::BackendChoice,
    /// Access groups: auto (nftables when usable, else not enforced), nftables (required), none.
    #[arg(long, default_value = "auto")]
    access_enforcement: agilekit_remote_access::agent::EnforcementMode,
    /// Seconds between status reports (handshakes, traffic); one is also sent after each change.
    #[arg(long, default_value_t = 10)]
    status_secs: u64,
    /// Print the interface's public key (creating the private key file if needed) and exit.
    #[arg(long)]
    show_public_key: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input (one line).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// IPA code of the organisation to add the account to.
        #[arg(long)]
        org: Option<String>,
        /// Roles in that organisation (repeatable): org_admin, hr, manager, employee, agent, trainer, evaluator, platform_admin.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set a new password for an account; read from standard input (one line).
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and name the first broken link, if any (exit code 1).
    Verify,
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("AGILEKIT_PASSWORD") {
        return Ok(p);
    }
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn explain(e: agilekit_kernel::Error) -> anyhow::Error {
    match e {
        agilekit_kernel::Error::Invalid(f) => {
            anyhow::anyhow!("invalid input: {}", f.0.iter().map(|e| format!("{} ({})", e.field, e.code)).collect::<Vec<_>>().join(", "))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("AGILEKIT_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    if cfg.log_format == "json" {
        tracing_subscriber::fmt().with_env_filter(filter).json().init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = Config::load(cli.common.config.as_deref())?;
    if let Some(d) = cli.common.data_dir {
        cfg.data_dir = d;
    }
    if let Some(u) = cli.common.database_url {
        cfg.database_url = u;
    }
    init_logging(&cfg);
    match cli.command {
        Command::Serve { listen, demo: with_demo } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            let db = open_db(&cfg).await?;
            if with_demo && demo::seed(&db).await.map_err(explain)? {
                tracing::info!("demo data seeded");
            }
            let running = start(&cfg, db).await?;
            println!("agilekit listening on {}", running.url());
            if with_demo {
                println!("demo logins (password {}):", demo::PASSWORD);
                for (email, _, org, roles) in demo::ACCOUNTS {
                    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                    println!("  {email:<30} {:<10} {}", org.unwrap_or("public"), roles.join(", "));
                }
            }
            shutdown_signal().await;
            tracing::info!("shutting down");
            running.stop().await;
        }
        Command::Migrate => {
            open_db(&cfg).await?;
            println!("migrations applied");
        }
        Command::Init { operator_name, ipa_code, tax_code, admin_email, admin_name } => {
            let db = open_db(&cfg).await?;
            if tenancy::operator(&db).await?.is_some() {
                anyhow::bail!("an operator organisation already exists");
            }
            let actor = Actor::system();
            let input = OrgInput { name: operator_name, kind: "operator".into(), ipa_code, tax_code, pec: String::new(), parent_id: None };
            let org = tenancy::create(&db, &actor, &input).await.map_err(explain)?;
            let pw = read_password()?;
            let acc = identity::create(&db, &actor, &NewAccount { email: admin_email, display_name: admin_name, password: pw, ..Default::default() })
                .await
                .map_err(explain)?;
            identity::grant(&db, &actor, org.id, acc.id, Role::PlatformAdmin).await.map_err(explain)?;
            identity::grant(&db, &actor, org.id, acc.id, Role::OrgAdmin).await.map_err(explain)?;
            println!("operator {} created; {} is its platform administrator", org.name, acc.email);
        }
        Command::User { command: UserCommand::Create { email, name, org, roles } } => {
            let db = open_db(&cfg).await?;
            let mut parsed = Vec::new();
            for r in &roles {
                parsed.push(Role::parse(r).ok_or_else(|| anyhow::anyhow!("unknown role {r}"))?);
            }
            let org = match org {
                Some(ipa) => Some(
                    tenancy::list(&db).await?.into_iter().find(|o| o.ipa_code == ipa.to_lowercase())
                        .ok_or_else(|| anyhow::anyhow!("no organisation with IPA code {ipa}"))?,
                ),
                None if !parsed.is_empty() => anyhow::bail!("--role needs --org"),
                None => None,
            };
            let pw = read_password()?;
            let actor = Actor::system();
            let acc = identity::create(&db, &actor, &NewAccount { email, display_name: name, password: pw, is_public: org.is_none(), ..Default::default() })
                .await
                .map_err(explain)?;
            if let Some(o) = &org {
                for r in parsed {
                    identity::grant(&db, &actor, o.id, acc.id, r).await.map_err(explain)?;
                }
            }
            println!("account {} created", acc.email);
        }
        Command::User { command: UserCommand::ResetPassword { email } } => {
            let db = open_db(&cfg).await?;
            let acc = identity::find_by_email(&db, &email).await?.ok_or_else(|| anyhow::anyhow!("no account {email}"))?;
            let pw = read_password()?;
            identity::set_password(&db, &Actor::system(), acc.id, &pw).await.map_err(explain)?;
            identity::session::delete_others(&db, acc.id, None).await?;
            println!("password of {} changed; its sessions ended", acc.email);
        }
        Command::Gateway(g) => {
            use agilekit_remote_access::agent;
            let private_key_file = g.private_key_file.unwrap_or_else(|| agent::Options::default_private_key_file(&g.interface));
            if g.show_public_key {
                let (public, created) = agent::public_key(&private_key_file)?;
                if created {
                    eprintln!("created the private key {} (keep it 0600)", private_key_file.display());
                }
                println!("{public}");
                return Ok(());
            }
            let opts = agent::Options {
                server: g.server.unwrap_or_default(),
                token: g.token.unwrap_or_default(),
                state_file: g.state_file.unwrap_or_else(|| agent::Options::default_state_file(&g.interface)),
                interface: g.interface,
                private_key_file,
                uapi_dir: g.uapi_dir,
                backend: g.backend,
                enforcement: g.access_enforcement,
                status_every: std::time::Duration::from_secs(g.status_secs.max(1)),
            };
            tokio::select! {
                r = agent::run(opts) => r?,
                _ = shutdown_signal() => tracing::info!("gateway agent stopping; the interface keeps its peers"),
            }
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let db = open_db(&cfg).await?;
            match audit::verify(&db).await? {
                Verdict::Intact { entries } => println!("audit chain intact: {entries} entries"),
                Verdict::Broken { seq, reason } => {
                    println!("audit chain BROKEN at entry {seq}: {reason}");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}
