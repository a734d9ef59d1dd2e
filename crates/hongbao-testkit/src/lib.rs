//! What the tests of hongbao's crates share: a fresh PostgreSQL database
//! per test, the address a `hongbao serve` started on port 0 prints, a
//! free port for the programs that cannot be given port 0, and the rule
//! that a test missing what it needs fails under CI instead of passing.

use std::path::Path;

/// `TEST_POSTGRES_URL`: a PostgreSQL server URL (`postgres://USER@HOST/DB`)
/// on which the tests create their databases.
pub const POSTGRES_ENV: &str = "TEST_POSTGRES_URL";

/// Test databases are named `hongbao_test_<unix seconds>_<ulid>`; those
/// older than this are left over from earlier runs and dropped.
const STALE_AFTER_SECS: u64 = 3 * 3600;

/// A test cannot run without `what`: under CI (`CI` set) it fails, naming
/// `fix`; elsewhere it says so and the caller returns.
pub fn missing(what: &str, fix: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is needed under CI: {fix}"
    );
    eprintln!("not run: {what} is missing ({fix})");
}

/// A fresh database on the PostgreSQL server of [`POSTGRES_ENV`], or `None`
/// without one (see [`missing`]). Stale test databases are dropped first.
pub async fn fresh_postgres() -> Option<String> {
    use sqlx::Executor;
    let server = std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())?;
    sqlx::any::install_default_drivers();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let name = format!(
        "hongbao_test_{now}_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let admin = sqlx::AnyPool::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {POSTGRES_ENV}: {e}"));
    let existing: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'hongbao\\_test\\_%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap_or_default();
    for stale in existing.iter().filter(|n| {
        let created = n.split('_').nth(2).and_then(|s| s.parse::<u64>().ok());
        created.is_none_or(|secs| secs + STALE_AFTER_SECS < now)
    }) {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {stale} WITH (FORCE)"
            )))
            .await;
    }
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create a test database");
    admin.close().await;
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// The base URL (`http://127.0.0.1:PORT`) that `hongbao serve`, logging to
/// `log`, printed once it listened: `hongbao serving http://…`, or in
/// sandbox mode `API        http://…`. Started on port 0, it is the only
/// way to know the port, and no other process can have taken it.
pub fn served_address(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("hongbao serving ")
            .or_else(|| line.strip_prefix("API "))?;
        rest.split_whitespace()
            .next()
            .filter(|a| a.starts_with("http://"))
            .map(str::to_owned)
    })
}

/// A port free a moment ago, for a program that must be told one
/// (chromedriver): bound and released, so another process may take it in
/// between. Servers of our own listen on port 0 instead.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// SHA-256 in hex: how a configuration names an API key.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_address_is_read_from_either_banner() {
        let dir = std::env::temp_dir().join(format!("testkit-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("serve.log");
        assert_eq!(served_address(&log), None);
        std::fs::write(&log, "starting\n").unwrap();
        assert_eq!(served_address(&log), None);
        std::fs::write(
            &log,
            "hongbao serving http://127.0.0.1:40123 for merchants main\n",
        )
        .unwrap();
        assert_eq!(
            served_address(&log).as_deref(),
            Some("http://127.0.0.1:40123")
        );
        std::fs::write(
            &log,
            "hongbao — SANDBOX MODE\n\n  API        http://127.0.0.1:8080   (OpenAPI: x)\n",
        )
        .unwrap();
        assert_eq!(
            served_address(&log).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
