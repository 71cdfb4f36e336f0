//! PostgreSQL authentication and TLS defaults (issue 9), against real servers that demand a
//! password (SCRAM): the password from `PGPASSWORD`, a libpq passfile, `db_password_file`,
//! `SKYSYNC_DB_PASSWORD_FILE` or a systemd credential, never in argv; never over plain TCP unless
//! `sslmode=disable` was written out.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use skysync_cli::sim::SimConfig;
use skysync_tests::cli::Skysync;
use skysync_tests::pg::{PASSWORD, PASSWORD_USER, PgServer};

async fn world() -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records: 20, ..SimConfig::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    sk
}

fn private_file(sk: &Skysync, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = sk.home().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

async fn sync(sk: &Skysync, url: &str) -> skysync_tests::cli::Run {
    sk.run(&["sync", "gifts", "--db", url, "--page-size", "50"]).await
}

#[tokio::test]
async fn the_password_comes_from_outside_the_url_and_travels_only_over_tls() {
    let pg = PgServer::start_password(true).expect("PostgreSQL test server");
    let sk = world().await;
    let ca = pg.ca_file().unwrap().display().to_string();
    let url =
        format!("postgres://{PASSWORD_USER}@localhost:{}/{}?sslmode=verify-full&sslrootcert={ca}", pg.port(), pg.db());
    // No password anywhere: the server refuses.
    let run = sync(&sk, &url).await;
    run.expect_code(1);
    assert!(run.stderr.contains("password"), "{}", run.stderr);

    // PGPASSWORD.
    sk.set_env("PGPASSWORD", Some(PASSWORD));
    sync(&sk, &url).await.expect_code(0);
    sk.set_env("PGPASSWORD", None);

    // A libpq passfile (PGPASSFILE), with an escaped colon in a field that does not matter.
    let line = format!("other\\:host:*:*:*:wrong\nlocalhost:{}:*:{PASSWORD_USER}:{PASSWORD}\n", pg.port());
    let passfile = private_file(&sk, "pgpass", &line, 0o600);
    sk.set_env("PGPASSFILE", Some(passfile.to_str().unwrap()));
    sync(&sk, &url).await.expect_code(0);
    // libpq ignores a passfile others can read; so do we, and say why.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = sync(&sk, &url).await;
    run.expect_code(1);
    assert!(run.stderr.contains("group or world access"), "{}", run.stderr);
    sk.set_env("PGPASSFILE", None);

    // ~/.pgpass.
    private_file(&sk, ".pgpass", &line, 0o600);
    sync(&sk, &url).await.expect_code(0);
    std::fs::remove_file(sk.home().join(".pgpass")).unwrap();

    // SKYSYNC_DB_PASSWORD_FILE, db_password_file in the config, and the systemd credential.
    let pwfile = private_file(&sk, "db_password", &format!("{PASSWORD}\n"), 0o600);
    sk.set_env("SKYSYNC_DB_PASSWORD_FILE", Some(pwfile.to_str().unwrap()));
    sync(&sk, &url).await.expect_code(0);
    sk.set_env("SKYSYNC_DB_PASSWORD_FILE", None);
    let config = private_file(
        &sk,
        "config.toml",
        &format!("[profiles.default]\ndb_password_file = \"{}\"\n", pwfile.display()),
        0o600,
    );
    sk.set_env("SKYSYNC_CONFIG", Some(config.to_str().unwrap()));
    sync(&sk, &url).await.expect_code(0);
    // A password file others can read is a configuration error.
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = sync(&sk, &url).await;
    run.expect_code(3);
    assert!(run.stderr.contains("db_password_file") && run.stderr.contains("readable"), "{}", run.stderr);
    std::fs::remove_file(&config).unwrap();
    sk.set_env("SKYSYNC_CONFIG", None);
    let creds = sk.home().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    private_file(&sk, "credentials/db_password", PASSWORD, 0o400);
    sk.set_env("CREDENTIALS_DIRECTORY", Some(creds.to_str().unwrap()));
    sync(&sk, &url).await.expect_code(0);
    let status = sk.run(&["sync", "status", "--db", &url, "--json"]).await;
    status.expect_code(0);

    // Over TLS without the CA (prefer is upgraded to require with a password): it still works.
    let prefer = format!("postgres://{PASSWORD_USER}@localhost:{}/{}?sslmode=prefer", pg.port(), pg.db());
    sync(&sk, &prefer).await.expect_code(0);
    for out in sk.all_output() {
        assert!(!out.contains(PASSWORD), "the password leaked: {out}");
    }
}

#[tokio::test]
async fn a_password_is_never_sent_in_the_clear_unless_sslmode_disable_is_written() {
    let pg = PgServer::start_password(false).expect("PostgreSQL test server");
    let sk = world().await;
    sk.set_env("PGPASSWORD", Some(PASSWORD));
    let base = format!("postgres://{PASSWORD_USER}@127.0.0.1:{}/{}", pg.port(), pg.db());
    for url in [base.clone(), format!("{base}?sslmode=prefer")] {
        let run = sync(&sk, &url).await;
        run.expect_code(1);
        assert!(
            run.stderr.contains("never sent over an unencrypted connection") && run.stderr.contains("sslmode=disable"),
            "{url}: {}",
            run.stderr
        );
    }
    // Written out, plain TCP is the user's choice.
    sync(&sk, &format!("{base}?sslmode=disable")).await.expect_code(0);
    // Without a password nothing secret travels, so `prefer` may still fall back to plain TCP.
    sk.set_env("PGPASSWORD", None);
    let trusted = PgServer::start().expect("PostgreSQL test server");
    sync(&sk, &trusted.url()).await.expect_code(0);
    for out in sk.all_output() {
        assert!(!out.contains(PASSWORD), "the password leaked: {out}");
    }
}
