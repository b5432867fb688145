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
