//! PostgreSQL for the suite: with `SSF_TEST_BACKEND=postgres`, every test directory gets its own
//! fresh database on the server at `SSF_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), so tests run in parallel as on SQLite.
//!
//! A database is created on the first `config_for(dir)` of a directory (later calls — a restart
//! on "the same database" — get the same one), named `ssf_test_<unix secs>_<hex>`. It is dropped
//! (`WITH (FORCE)`) once its directory is gone: each new creation sweeps the databases of deleted
//! directories first. The last few of a run outlive it; the first creation of the next run drops
//! any `ssf_test_` database older than two hours, and random names mean a leftover never clashes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const STALE_SECS: u64 = 2 * 3600;

/// Whether this run targets PostgreSQL.
pub fn enabled() -> bool {
    std::env::var("SSF_TEST_BACKEND").is_ok_and(|b| b.eq_ignore_ascii_case("postgres"))
}

fn server_url() -> String {
    std::env::var("SSF_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
}

struct Registry {
    /// Directory → its database.
    databases: Vec<(PathBuf, String)>,
    swept_stale: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    databases: Vec::new(),
    swept_stale: false,
});

/// The URL of `dir`'s database, created when it has none yet.
pub fn database_url_for(dir: &Path) -> String {
    let mut reg = REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = server_url();
    if let Some((_, name)) = reg.databases.iter().find(|(d, _)| d == dir) {
        return with_database(&server, name);
    }
    // A database lives as long as its directory: make sure it exists, or the next test's sweep
    // below drops the database of a directory its app has not created yet.
    let _ = std::fs::create_dir_all(dir);
    let mut gone = Vec::new();
    reg.databases.retain(|(d, name)| {
        let keep = d.exists();
        if !keep {
            gone.push(name.clone());
        }
        keep
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("ssf_test_{now}_{}", &hex[..16]);
    let sweep_stale = !reg.swept_stale;
    let (create_server, create_name) = (server.clone(), name.clone());
    // `config_for` is not async and may run inside a test's runtime: a thread of its own.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut conn = sqlx::PgConnection::connect(&create_server)
                .await
                .unwrap_or_else(|e| {
                    panic!("SSF_TEST_BACKEND=postgres needs a server at SSF_TEST_DATABASE_URL: {e}")
                });
            let mut drop_names = gone;
            if sweep_stale {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'ssf\\_test\\_%'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                drop_names.extend(names.into_iter().filter(|n| {
                    n.split('_')
                        .nth(2)
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|at| at + STALE_SECS < now)
                }));
            }
            for old in drop_names {
                // Best effort: a database that cannot go now goes with a later sweep.
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE \"{create_name}\""
            )))
            .execute(&mut conn)
            .await
            .expect("create the test database");
            let _ = conn.close().await;
        });
    })
    .join()
    .expect("creating the test database");
    reg.swept_stale = true;
    reg.databases.push((dir.to_path_buf(), name.clone()));
    with_database(&server, &name)
}

fn with_database(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("SSF_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
