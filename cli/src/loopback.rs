//! The loopback listeners' defences (`skysync login`, `skysync consent-page`).
//!
//! - **Both loopback addresses or none.** A browser may resolve `localhost` to `::1` or to
//!   `127.0.0.1`. If skysync holds only one of them, another local user listening on the other
//!   receives the authorization code and state. So with a `localhost` redirect URI both are bound,
//!   and a failure on either (port in use, permission) stops at once. The one exception is a host
//!   without IPv6 at all (`::1` does not exist: `EADDRNOTAVAIL` or `EAFNOSUPPORT`): nobody can
//!   listen there, and no browser can connect there, so `127.0.0.1` alone is safe.
//! - **The `Host` header.** A page on another site can make the browser talk to our port under
//!   its own name (DNS rebinding). Only requests naming the redirect URI's host, `localhost`,
//!   `127.0.0.1` or `[::1]`, with our port, are answered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

/// Why a listener could not be bound, in words, with what to do.
fn bind_failure(addr: SocketAddr, e: &std::io::Error, fixes: &str) -> anyhow::Error {
    let why = if e.kind() == std::io::ErrorKind::AddrInUse {
        format!("port {} is already in use there (another skysync, or another program or user)", addr.port())
    } else {
        e.to_string()
    };
    anyhow::anyhow!("cannot listen on {addr} (port {}): {why}. {fixes}", addr.port())
}

/// Whether a bind error means the address does not exist on this host (IPv6 disabled), as
/// opposed to being held by someone.
pub fn address_absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::AddrNotAvailable
        || e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
}

/// Binds `ip:port`, and when `both` also `[::1]` at the same port (see the module docs). `fixes`
/// ends the error message. Returns the listeners, `ip`'s first.
pub async fn bind(ip: IpAddr, port: u16, both: bool, fixes: &str) -> anyhow::Result<Vec<TcpListener>> {
    let addr = SocketAddr::new(ip, port);
    let first = TcpListener::bind(addr).await.map_err(|e| bind_failure(addr, &e, fixes))?;
    let mut listeners = vec![first];
    if both {
        let port = listeners[0].local_addr()?.port();
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
        match TcpListener::bind(v6).await {
            Ok(l) => listeners.push(l),
            Err(e) if address_absent(&e) => {
                tracing::info!("this host has no IPv6 loopback address ({e}); listening on 127.0.0.1 only");
            }
            Err(e) => return Err(bind_failure(v6, &e, fixes)),
        }
    }
    Ok(listeners)
}

/// `127.0.0.1` for `localhost`, the address itself for a loopback IP; `None` otherwise.
pub fn loopback_ip(host: Option<url::Host<&str>>) -> Option<IpAddr> {
    match host? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        url::Host::Ipv4(ip) if ip.is_loopback() => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) if ip.is_loopback() => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// Whether a request's `Host` header names this listener: `host` (the redirect URI's), `localhost`,
/// `127.0.0.1` or `[::1]`, with `port` (or without a port when `port` is 80).
pub fn host_allowed(header: Option<&str>, host: &str, port: u16) -> bool {
    let Some(header) = header else { return false };
    let header = header.trim().to_ascii_lowercase();
    let (name, given_port) = match header.rsplit_once(':') {
        // `[::1]` alone has colons inside the brackets.
        Some((name, p)) if !p.contains(']') => (name.to_owned(), p.parse::<u16>().ok()),
        _ => (header.clone(), Some(80)),
    };
    let names = [host.to_ascii_lowercase(), "localhost".into(), "127.0.0.1".into(), "[::1]".into()];
    given_port == Some(port) && names.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_must_name_loopback_and_our_port() {
        for ok in ["localhost:8321", "127.0.0.1:8321", "[::1]:8321", "LOCALHOST:8321"] {
            assert!(host_allowed(Some(ok), "localhost", 8321), "{ok}");
        }
        for bad in [
            "evil.example:8321",
            "localhost:8322",
            "localhost",
            "127.0.0.2:8321",
            "localhost.evil.example:8321",
            "[::1]",
            "",
        ] {
            assert!(!host_allowed(Some(bad), "localhost", 8321), "{bad}");
        }
        assert!(!host_allowed(None, "localhost", 8321));
        assert!(host_allowed(Some("localhost"), "localhost", 80));
        assert!(host_allowed(Some("127.0.0.5:9000"), "127.0.0.5", 9000));
    }

    #[test]
    fn missing_ipv6_is_not_a_squatter() {
        let absent = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        assert!(address_absent(&absent));
        let afno = std::io::Error::from_raw_os_error(rustix::io::Errno::AFNOSUPPORT.raw_os_error());
        assert!(address_absent(&afno));
        assert!(!address_absent(&std::io::Error::from(std::io::ErrorKind::AddrInUse)));
        assert!(!address_absent(&std::io::Error::from(std::io::ErrorKind::PermissionDenied)));
    }
}
