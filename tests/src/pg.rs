//! A throwaway PostgreSQL server for tests.
//!
//! [`PgServer::start`] shares one server per test process (started lazily on first use) and gives
//! each caller a fresh database, so tests run in parallel. The server listens only on 127.0.0.1 on
//! a free port, keeps its socket in its temp dir, trusts every connection (test only) and runs
//! with `fsync=off`.
//!
//! Ports: every other test server binds port 0 and hands its listener over, but PostgreSQL must be
//! told a number. So this module probes a free port and passes it to `pg_ctl`; if another process
//! takes it in between, PostgreSQL cannot bind, `pg_ctl -w start` fails, and the start is retried
//! on a new port (up to [`START_ATTEMPTS`] times). A port taken that way never yields a server on
//! someone else's socket: PostgreSQL refuses to start rather than share a port. A Unix-socket-only
//! server would avoid the probe, but the TLS and password tests need TCP, and the CLI's TCP path is
//! what users run.
//!
//! Cleanup: a `static` is never dropped, so each server is paired with a detached watchdog
//! (`setsid sh -c 'while kill -0 <test pid>; do sleep 1; done; pg_ctl stop; rm -rf <dir>'`) that
//! stops it and removes its files once the test process is gone, however it ended (even `SIGKILL`).
//! [`PgServer::start_dedicated`] owns its server and stops it on drop.
//!
//! [`PgServer::start_tls`] shares a second server that accepts only TLS over TCP (`hostssl` in
//! `pg_hba.conf`, `ssl=on`), with a server certificate for `localhost` (DNS name only, no IP
//! address) issued by a [`TestCa`] generated at start; [`PgServer::ca_file`] is its PEM file.
//!
//! Works as root (CI): `initdb`/`pg_ctl` refuse root, so they run as the `postgres` user via
//! `runuser` (or `su`) with the temp dir chowned to it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Superuser created by `initdb`.
const USER: &str = "skysync";
/// The role of [`PgServer::start_password`] servers that must give a password.
pub const PASSWORD_USER: &str = "app";
/// Its password.
pub const PASSWORD: &str = "pg-Test-Passw0rd-6d1e";
/// Account that runs the server when the tests run as root.
const SERVICE_ACCOUNT: &str = "postgres";

/// One running server: its files, port, and how to run its binaries.
#[derive(Debug)]
struct Instance {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    /// `Some("postgres")` when running as root.
    run_as: Option<&'static str>,
    /// The CA that issued the server certificate, when the server speaks TLS only.
    ca_file: Option<PathBuf>,
    stopped: bool,
}

/// A throwaway certificate authority (ECDSA P-256) for TLS tests.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new self-signed CA called `name`.
    pub fn new(name: &str) -> Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `dns_names` and its private key, both PEM.
    pub fn server_cert(&self, dns_names: &[&str]) -> Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns_names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, dns_names.first().copied().unwrap_or("server"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A database on a test PostgreSQL server. See the module docs.
#[derive(Debug)]
pub struct PgServer {
    instance: Handle,
    db: String,
}

#[derive(Debug)]
enum Handle {
    Shared(&'static Instance),
    Owned(Instance),
}

impl PgServer {
    /// A fresh database on this process's shared server (started on first use).
    ///
    /// Fails, with what to do, if PostgreSQL is not installed: tests never skip silently.
    pub fn start() -> Result<PgServer> {
        static SHARED: OnceLock<std::result::Result<Instance, String>> = OnceLock::new();
        let instance = SHARED
            .get_or_init(|| Instance::start(false).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("{e}"))?;
        let db = instance.create_db()?;
        Ok(PgServer { instance: Handle::Shared(instance), db })
    }

    /// A fresh database on this process's shared TLS-only server (started on first use): TCP
    /// connections without TLS are refused by `pg_hba.conf`. See the module docs.
    pub fn start_tls() -> Result<PgServer> {
        static SHARED_TLS: OnceLock<std::result::Result<Instance, String>> = OnceLock::new();
        let instance = SHARED_TLS
            .get_or_init(|| Instance::start(true).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("{e}"))?;
        let db = instance.create_db()?;
        Ok(PgServer { instance: Handle::Shared(instance), db })
    }

    /// A server of its own where [`PASSWORD_USER`] logs in with [`PASSWORD`] (SCRAM) over TCP;
    /// with `tls` the server also offers TLS (certificate for `localhost`, see [`PgServer::ca_file`]).
    pub fn start_password(tls: bool) -> Result<PgServer> {
        let instance = Instance::start_with(tls, true)?;
        let db = instance.create_db()?;
        instance.create_password_role()?;
        Ok(PgServer { instance: Handle::Owned(instance), db })
    }

    /// A server of its own (with one fresh database), stopped and deleted when this is dropped.
    pub fn start_dedicated() -> Result<PgServer> {
        let instance = Instance::start(false)?;
        let db = instance.create_db()?;
        Ok(PgServer { instance: Handle::Owned(instance), db })
    }

    /// Like [`PgServer::start_dedicated`], but each start attempt takes its port from `ports`
    /// (the harness's own test of the retry on a taken port).
    pub fn start_dedicated_on(ports: impl FnMut() -> Result<u16>) -> Result<PgServer> {
        let instance = Instance::start_on(false, false, ports)?;
        let db = instance.create_db()?;
        Ok(PgServer { instance: Handle::Owned(instance), db })
    }

    fn instance(&self) -> &Instance {
        match &self.instance {
            Handle::Shared(i) => i,
            Handle::Owned(i) => i,
        }
    }

    /// `postgres://skysync@127.0.0.1:PORT/DB` (no password: the test server trusts loopback).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{}", self.port(), self.db)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.instance().port
    }

    /// The database name.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The PEM file of the CA that issued a [`PgServer::start_tls`] server's certificate.
    pub fn ca_file(&self) -> Option<&Path> {
        self.instance().ca_file.as_deref()
    }
}

/// Highest `/usr/lib/postgresql/<major>/bin` that has `initdb`, else the directory of `initdb` in PATH.
fn find_bin() -> Result<PathBuf> {
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in entries.flatten() {
            let bin = e.path().join("bin");
            let major = e.file_name().to_string_lossy().parse::<u32>().ok();
            if let Some(major) = major
                && bin.join("initdb").is_file()
                && best.as_ref().is_none_or(|(m, _)| major > *m)
            {
                best = Some((major, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return Ok(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
            }
        }
    }
    bail!(
        "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or PATH). \
         Run the test command from the README, which installs it (on Debian/Ubuntu: \
         apt-get install postgresql)"
    )
}

fn is_root() -> bool {
    crate::process::command("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// How many ports a server start tries before giving up (see the module docs).
pub const START_ATTEMPTS: usize = 5;

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0").context("finding a free port")?.local_addr()?.port())
}

fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Single-quotes `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Instance {
    fn start(tls: bool) -> Result<Instance> {
        Instance::start_with(tls, false)
    }

    /// With `password`, TCP logins as [`PASSWORD_USER`] need [`PASSWORD`] (SCRAM), with or
    /// without TLS (`host` lines), while [`USER`] stays trusted for `createdb`.
    fn start_with(tls: bool, password: bool) -> Result<Instance> {
        Instance::start_on(tls, password, free_port)
    }

    /// [`Instance::start_with`], taking each attempt's port from `ports`.
    fn start_on(tls: bool, password: bool, mut ports: impl FnMut() -> Result<u16>) -> Result<Instance> {
        let bin = find_bin()?;
        let run_as = is_root().then_some(SERVICE_ACCOUNT);
        let tmp = tempfile::Builder::new().prefix("skysync-pg-").tempdir().context("creating the server's temp dir")?;
        // The watchdog (or Drop) deletes it; keep it past this function.
        let root = tmp.keep();
        let mut instance = Instance { bin, root, port: 0, run_as, ca_file: None, stopped: false };
        if let Some(user) = run_as {
            let mut chown = crate::process::command("chown");
            chown.arg(format!("{user}:")).arg(&instance.root);
            run(chown, "chown of the server dir to the postgres user")?;
        }
        instance.spawn_watchdog()?;
        let data = instance.data_dir();
        let mut initdb = instance.command("initdb");
        initdb.arg("-D").arg(&data).args(["-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]);
        run(initdb, "initdb")?;
        let mut options = String::new();
        if tls {
            instance.ca_file = Some(instance.write_tls_files()?);
            options = " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key".into();
        }
        if password {
            instance.write_password_hba()?;
        }
        // A free port can be taken between probing and binding: retry with another one.
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            instance.port = ports()?;
            let mut start = instance.command("pg_ctl");
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(instance.root.join("server.log"))
                .arg("-o")
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
                     -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200{options}",
                    instance.port,
                    instance.root.display()
                ))
                .args(["-w", "-t", "60", "start"]);
            match run(start, "pg_ctl start") {
                Ok(()) => return Ok(instance),
                Err(e) => {
                    let log = std::fs::read_to_string(instance.root.join("server.log")).unwrap_or_default();
                    last_err = Some(e.context(log));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("pg_ctl start failed")))
    }

    /// Writes `server.crt`, `server.key` (0600, owned by the server's account) and a TLS-only
    /// `pg_hba.conf` into the data directory, and the CA certificate to `ca.pem` next to it.
    fn write_tls_files(&self) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let ca = TestCa::new("skysync test CA")?;
        let (cert, key) = ca.server_cert(&["localhost"])?;
        let data = self.data_dir();
        let write = |name: &str, text: &str, mode: u32| -> Result<PathBuf> {
            let path = data.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            if let Some(user) = self.run_as {
                let mut chown = crate::process::command("chown");
                chown.arg(format!("{user}:")).arg(&path);
                run(chown, "chown of a TLS file to the postgres user")?;
            }
            Ok(path)
        };
        write("server.crt", &cert, 0o644)?;
        write("server.key", &key, 0o600)?;
        // TCP only with TLS; the Unix socket stays open (trusted) for local tools.
        write(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            0o600,
        )?;
        let ca_file = self.root.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).context("writing ca.pem")?;
        Ok(ca_file)
    }

    /// A `pg_hba.conf` where [`PASSWORD_USER`] must give its password over TCP.
    fn write_password_hba(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data_dir().join("pg_hba.conf");
        let hba = format!(
            "local all all trust\nhost all {USER} 127.0.0.1/32 trust\nhost all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
        );
        std::fs::write(&path, hba).context("writing pg_hba.conf")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some(user) = self.run_as {
            let mut chown = Command::new("chown");
            chown.arg(format!("{user}:")).arg(&path);
            run(chown, "chown of pg_hba.conf to the postgres user")?;
        }
        Ok(())
    }

    /// Creates [`PASSWORD_USER`] with [`PASSWORD`].
    fn create_password_role(&self) -> Result<()> {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-d", "postgres", "-c"])
            .arg(format!("CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"));
        if self.ca_file.is_some() {
            c.env("PGSSLMODE", "require");
        }
        run(c, "creating the password role")
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// A command for a PostgreSQL binary, as the service account when running as root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = if Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists() {
                    let mut c = crate::process::command("runuser");
                    c.args(["-u", user, "--"]).arg(exe);
                    c
                } else {
                    // `su -c` takes one shell string; the caller's args are appended as "$@".
                    let mut c = crate::process::command("su");
                    c.args([user, "-s", "/bin/sh", "-c"])
                        .arg(format!("exec {} \"$@\"", sh_quote(&exe.to_string_lossy())))
                        .arg("sh");
                    c
                };
                c.current_dir(&self.root);
                c
            }
            None => crate::process::command(exe),
        }
    }

    /// The shell command that stops the server, for the watchdog.
    fn stop_shell(&self) -> String {
        let pg_ctl = sh_quote(&self.bin.join("pg_ctl").to_string_lossy());
        let data = sh_quote(&self.data_dir().to_string_lossy());
        let stop = format!("{pg_ctl} -D {data} stop -m immediate");
        match self.run_as {
            Some(user) => format!("runuser -u {user} -- {stop} || su {user} -s /bin/sh -c {}", sh_quote(&stop)),
            None => stop,
        }
    }

    /// Starts a detached process that stops the server and deletes its files once this process
    /// has exited. It is in its own session (setsid) so a Ctrl-C on the test does not kill it first.
    fn spawn_watchdog(&self) -> Result<()> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {root}",
            pid = std::process::id(),
            stop = self.stop_shell(),
            root = sh_quote(&self.root.to_string_lossy()),
        );
        let mut cmd = if Path::new("/usr/bin/setsid").exists() || Path::new("/bin/setsid").exists() {
            let mut c = crate::process::command("setsid");
            c.arg("sh");
            c
        } else {
            crate::process::command("sh")
        };
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the PostgreSQL watchdog")?;
        Ok(())
    }

    fn create_db(&self) -> Result<String> {
        let name = format!("t_{}", random_suffix());
        let mut c = crate::process::command(self.bin.join("createdb"));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, &name]);
        if self.ca_file.is_some() {
            c.env("PGSSLMODE", "require");
        }
        run(c, "createdb")?;
        Ok(name)
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(self.data_dir()).args(["-w", "stop", "-m", "immediate"]);
        let _ = run(stop, "pg_ctl stop");
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retry on a taken port (module docs): the first port offered is held by a listener of
    /// this test, so that attempt must fail and the next one, on a free port, must serve.
    #[test]
    fn a_port_taken_between_probe_and_start_is_retried_on_another() {
        crate::skip_in_fast_tier!("PostgreSQL");
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let mut offered = Vec::new();
        let server = PgServer::start_dedicated_on(|| {
            let port = if offered.is_empty() { taken_port } else { free_port()? };
            offered.push(port);
            Ok(port)
        })
        .expect("the second attempt starts the server");
        assert_eq!(offered.len(), 2, "one failed attempt on the taken port, then one on a free port: {offered:?}");
        assert_ne!(server.port(), taken_port);
        // The server answers on its port; the holder of the taken port still has it.
        let mut psql = Command::new(server.instance().bin.join("psql"));
        psql.args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port().to_string(),
            "-U",
            USER,
            "-d",
            server.db(),
            "-c",
            "SELECT 1",
        ]);
        run(psql, "psql on the started server").unwrap();
        assert_eq!(taken.local_addr().unwrap().port(), taken_port);
    }
}
