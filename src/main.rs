//! The `ssf-transmitter` command: parses the command line and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret as _;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::{Clock, SystemClock};
use ssf_transmitter::config::Config;
use ssf_transmitter::enforcement::audit;
use ssf_transmitter::keys::{KeyDir, KeyInfo};
use ssf_transmitter::{Application, app, telemetry};

/// Shared Signals (SSF) transmitter for Okta: signed risk SETs, push delivery, issuer keys and
/// enforcement over the Okta Management API.
#[derive(Debug, Parser)]
#[command(name = "ssf-transmitter", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML). Default: ./ssf-transmitter.toml when present. SSF_* environment
    /// variables override it.
    #[arg(long, global = true, env = "SSF_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (the default command).
    Serve {
        /// Also run a local Okta-compatible org (the sandbox), register with it, and send signals
        /// to it. Its org URL and API token are written to sandbox.json beside the database.
        #[arg(long)]
        sandbox: bool,
    },
    /// Run only the local Okta-compatible org (writes sandbox.json in the working directory).
    Sandbox,
    /// Manage issuer signing keys in the keys directory.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage API clients (bearer tokens with scopes).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Work with the Okta org in [okta].
    #[command(subcommand)]
    Okta(OktaCommand),
    /// Submit a bulk job to a running service and follow it: the same steps for every user
    /// in a file. Exit 0 when every user is done, 1 otherwise (failed users are listed).
    Contain(ContainArgs),
    /// Print the OpenAPI document of the HTTP API.
    #[command(hide = true)]
    Openapi,
}

#[derive(Debug, Args)]
struct ContainArgs {
    /// One user per line: Okta id, login, email, short name or DOMAIN\sam (blank lines and
    /// '#' comments skipped; at most 10,000).
    #[arg(long, value_name = "FILE")]
    users_file: PathBuf,
    /// Comma-separated steps: clear_sessions, suspend, deactivate, reset_factors,
    /// expire_password, reset_password, add_to_group=GROUP, signal=LEVEL.
    #[arg(long, value_name = "STEPS")]
    steps: String,
    /// Why (recorded in the audit log).
    #[arg(long)]
    reason: Option<String>,
    /// The service's URL.
    #[arg(
        long,
        env = "SSF_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    server: String,
    /// An API token with enforce:write and enforce:read.
    #[arg(long, env = "SSF_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List keys with their state (next, active, retiring, retired).
    List,
    /// Generate a new key in state `next` (published, not yet signing).
    Generate {
        /// RSA modulus size.
        #[arg(long, default_value_t = 2048, value_parser = clap::builder::PossibleValuesParser::new(["2048", "3072", "4096"]).map(|s| s.parse::<u32>().unwrap_or(2048)))]
        bits: u32,
    },
    /// Import an RSA private key (PKCS#8 or PKCS#1 PEM, at least 2048 bits) in state `next`.
    Import {
        /// The PEM file.
        #[arg(long, value_name = "FILE")]
        pem: PathBuf,
    },
    /// Make a key the signing key; the current one becomes `retiring` (still published).
    Activate {
        /// Key id (see `keys list`).
        kid: String,
        /// Activate even if the key was published less than 300 s ago (the JWKS cache lifetime).
        #[arg(long)]
        force: bool,
    },
    /// Unpublish a `next` or `retiring` key (its file is kept).
    Retire {
        /// Key id.
        kid: String,
        /// Retire even though SETs it signed still wait for delivery (they will fail).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OktaCommand {
    /// Create or update this transmitter as an active Security Events Provider in the org
    /// (registered by its well-known URL, issuer + /.well-known/ssf-configuration).
    Register,
    /// Show this transmitter's Security Events Provider in the org (exit 3 when not registered).
    Status,
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Create a client and print its bearer token (shown only once).
    Add(AddClient),
    /// List clients.
    List,
    /// Revoke a client's token.
    Revoke {
        /// Client name.
        name: String,
    },
}

#[derive(Debug, Args)]
struct AddClient {
    /// Client name (letters, digits, '.', '_', '-').
    name: String,
    /// Scope to grant; repeat for several: signals:write, signals:read, enforce:write,
    /// enforce:read, enforce:admin (role assignment, set password, credentials handed back),
    /// admin. No scope implies another.
    #[arg(long = "scope", required = true, value_name = "SCOPE")]
    scopes: Vec<Scope>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        let doc = ssf_transmitter::http::api_router().into_openapi();
        match doc.to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(Command::Contain(args)) = cli.command {
        // A client of a running service: no configuration of its own.
        return contain(args);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format, &config.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(
        cli.command.unwrap_or(Command::Serve { sandbox: false }),
        config,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        // A configuration error, found at load time or later: exit 2, like clap's usage errors.
        Err(e)
            if e.downcast_ref::<ssf_transmitter::config::ConfigErrors>()
                .is_some() =>
        {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn contain(args: ContainArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let job = ssf_transmitter::contain::ContainJob {
        server: args.server,
        token: args.token,
        users_file: args.users_file,
        steps: args.steps,
        reason: args.reason,
    };
    match runtime.block_on(ssf_transmitter::contain::run(job)) {
        Ok(ssf_transmitter::contain::Ended::AllDone) => ExitCode::SUCCESS,
        Ok(ssf_transmitter::contain::Ended::NotAll) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "sandbox")]
async fn serve_sandboxed(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    app::serve_with_sandbox(config, clock, app::shutdown_signal()).await
}

#[cfg(feature = "sandbox")]
async fn sandbox_only(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let problems = config.sandbox.validate();
    if !problems.is_empty() {
        return Err(ssf_transmitter::config::ConfigErrors(problems).into());
    }
    let sandbox = ssf_transmitter::sandbox::Sandbox::bind_with_token(
        config.sandbox.listen,
        clock,
        ssf_transmitter::sandbox::Sandbox::read_api_token(std::path::Path::new("sandbox.json"))?,
    )
    .await?;
    if let Some(seed) = &config.sandbox.seed_file {
        sandbox.seed_from_file(seed)?;
    }
    sandbox.write_credentials(std::path::Path::new("sandbox.json"))?;
    tracing::info!(org_url = %sandbox.org_url(), "Okta sandbox serving; org URL and API token are in ./sandbox.json");
    sandbox.run(app::shutdown_signal()).await
}

#[cfg(not(feature = "sandbox"))]
const NO_SANDBOX: &str = "this build has no Okta sandbox (built without the `sandbox` cargo feature); \
     build with default features to use `serve --sandbox` or `sandbox`";

#[cfg(not(feature = "sandbox"))]
async fn serve_sandboxed(_config: Config, _clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    anyhow::bail!(NO_SANDBOX)
}

#[cfg(not(feature = "sandbox"))]
async fn sandbox_only(_config: Config, _clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    anyhow::bail!(NO_SANDBOX)
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve { sandbox: false } => {
            let app = Application::build(config, clock).await?;
            app.run_until_stopped(app::shutdown_signal()).await
        }
        Command::Serve { sandbox: true } => serve_sandboxed(config, clock).await,
        Command::Sandbox => sandbox_only(config, clock).await,
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("database is up to date ({})", config.database_url);
            Ok(())
        }
        Command::Keys(cmd) => keys(cmd, &config, clock).await,
        Command::Clients(cmd) => clients(cmd, &config, clock).await,
        Command::Openapi | Command::Contain(_) => Ok(()),
        Command::Okta(OktaCommand::Status) => {
            let issuer = cli_issuer(&config)?;
            match app::okta_provider(&config, &issuer).await? {
                Some(p) => {
                    println!(
                        "provider {} ({}) is {}: issuer {}, JWKS {}, well-known {}",
                        p.id,
                        p.name,
                        p.status,
                        p.settings.issuer.as_deref().unwrap_or("-"),
                        p.settings.jwks_url.as_deref().unwrap_or("-"),
                        p.settings.well_known_url.as_deref().unwrap_or("-")
                    );
                    Ok(())
                }
                None => {
                    println!(
                        "not registered: no Security Events Provider in the org has issuer {issuer}; run `ssf-transmitter okta register`"
                    );
                    std::process::exit(3);
                }
            }
        }
        Command::Okta(OktaCommand::Register) => {
            let issuer = cli_issuer(&config)?;
            let p = app::register_with_okta(&config, &issuer).await?;
            println!(
                "provider {} ({}) is {}: issuer {}, JWKS {}",
                p.id,
                p.name,
                p.status,
                p.settings.issuer.as_deref().unwrap_or("-"),
                p.settings.jwks_url.as_deref().unwrap_or("-")
            );
            Ok(())
        }
    }
}

/// The issuer as the running service would derive it.
fn cli_issuer(config: &ssf_transmitter::config::Config) -> anyhow::Result<String> {
    Ok(match config.issuer_url().map_err(anyhow::Error::new)? {
        Some(u) => ssf_transmitter::config::issuer_string(&u),
        None => format!("http://{}", config.listen),
    })
}

fn print_keys(keys: &[KeyInfo]) {
    println!(
        "{:<45} {:<9} {:>5}  {:<25} {:<25} RETIRED",
        "KID", "STATE", "BITS", "CREATED", "ACTIVATED"
    );
    for k in keys {
        let ts = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or_else(
                || "-".to_owned(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
        };
        println!(
            "{:<45} {:<9} {:>5}  {:<25} {:<25} {}",
            k.kid,
            k.state.as_str(),
            k.bits,
            ts(Some(k.created_at)),
            ts(k.activated_at),
            ts(k.retired_at)
        );
    }
}

async fn keys(cmd: KeysCommand, config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let keys = app::open_keys(config, &clock).await?;
    let dir: KeyDir = keys.dir().clone();
    let now = clock.now();
    if let KeysCommand::Retire { kid, force: false } = &cmd {
        let store = app::open_store(config).await?;
        let pending = store.pending_with_kid(kid).await?;
        store.close().await;
        if pending > 0 {
            anyhow::bail!("{}", ssf_transmitter::keys::pending_message(kid, pending));
        }
    }
    let (action, target, result) = match cmd {
        KeysCommand::List => {
            print_keys(&dir.list()?);
            return Ok(());
        }
        KeysCommand::Generate { bits } => ("key.generate", None, dir.generate(bits, now)),
        KeysCommand::Import { pem } => {
            let text = zeroize::Zeroizing::new(
                std::fs::read(&pem).with_context(|| format!("cannot read {}", pem.display()))?,
            );
            ("key.import", None, dir.import(&text, now))
        }
        KeysCommand::Activate { kid, force } => {
            let r = dir.activate(&kid, force, now);
            ("key.activate", Some(kid), r)
        }
        KeysCommand::Retire { kid, .. } => {
            let r = dir.retire(&kid, now);
            ("key.retire", Some(kid), r)
        }
    };
    let store = app::open_store(config).await?;
    let target = result.as_ref().ok().map(|k| k.kid.clone()).or(target);
    let err = result.as_ref().err().map(ToString::to_string);
    audit::record(
        &store,
        now,
        audit::Actor::CLI,
        action,
        target.as_deref(),
        err.as_deref().map_or(Ok(()), Err),
    )
    .await;
    store.close().await;
    let info = result?;
    println!(
        "{}: {} ({} bits) is now {}",
        action,
        info.kid,
        info.bits,
        info.state.as_str()
    );
    println!(
        "a running server picks this up within {} s",
        config.keys_reload_secs
    );
    Ok(())
}

async fn clients(
    cmd: ClientsCommand,
    config: &Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let store = app::open_store(config).await?;
    let now = clock.now();
    let outcome = match cmd {
        ClientsCommand::Add(add) => {
            let result =
                ssf_transmitter::auth::create_client(&store, &add.name, &add.scopes, now).await;
            let err = result.as_ref().err().map(ToString::to_string);
            audit::record(
                &store,
                now,
                audit::Actor::CLI,
                "client.add",
                Some(&add.name),
                err.as_deref().map_or(Ok(()), Err),
            )
            .await;
            match result {
                Ok((client, token)) => {
                    let scopes: Vec<&str> = client.scopes.iter().map(|s| s.as_str()).collect();
                    // The id is the client's OAuth client_id (POST /oauth2/token).
                    eprintln!(
                        "created API client {} (id {}) with scopes {}",
                        client.name,
                        client.id,
                        scopes.join(" ")
                    );
                    eprintln!("its token is printed below once; it cannot be shown again:");
                    println!("{}", token.expose_secret());
                    Ok(())
                }
                Err(e) => Err(anyhow::Error::new(e)),
            }
        }
        ClientsCommand::List => {
            let clients = ssf_transmitter::auth::list_clients(&store).await?;
            println!("{:<32} {:<8} {:<25} SCOPES", "NAME", "STATUS", "CREATED");
            for c in clients {
                let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<32} {:<8} {:<25} {}",
                    c.name,
                    if c.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    c.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    scopes.join(" ")
                );
            }
            Ok(())
        }
        ClientsCommand::Revoke { name } => {
            let revoked = ssf_transmitter::auth::revoke_client(&store, &name, now).await?;
            let outcome = if revoked.is_some() {
                Ok(())
            } else {
                Err("no active client with this name")
            };
            audit::record(
                &store,
                now,
                audit::Actor::CLI,
                "client.revoke",
                Some(&name),
                outcome,
            )
            .await;
            match revoked {
                Some(c) => {
                    println!("revoked API client {}", c.name);
                    Ok(())
                }
                None => Err(anyhow::anyhow!("no active API client named {name:?}")),
            }
        }
    };
    store.close().await;
    outcome
}
