//! The `-rewrite-localhost HOST` rule: a destination on this machine's loopback names
//! (`localhost`, `127.0.0.1`, `[::1]`) is called on `HOST` instead, port, path and query
//! kept. Inside a container `localhost` is the container, so Docker users point it at
//! `host.docker.internal`. Only where the request goes changes: the signature still names
//! the URL as published, which is what the receiver checks.

use http::Uri;
use http::uri::Authority;

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// `uri` on `to` when its host is a loopback name, `None` when it is left alone.
pub fn rewrite(uri: &Uri, to: &str) -> Option<Uri> {
    let authority = uri.authority()?;
    if !is_loopback_name(authority.host()) {
        return None;
    }
    let host = if to.contains(':') && !to.starts_with('[') {
        format!("[{to}]")
    } else {
        to.to_string()
    };
    let new = match authority.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(new.parse::<Authority>().ok()?);
    Uri::from_parts(parts).ok()
}

/// Checks a `-rewrite-localhost` value: a host name or IP address, no scheme or port.
pub fn validate_host(to: &str) -> Result<String, String> {
    let to = to.trim();
    let bare = to.trim_start_matches('[').trim_end_matches(']');
    let ok = !bare.is_empty()
        && (bare.parse::<std::net::IpAddr>().is_ok()
            || bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'));
    if ok {
        Ok(bare.to_string())
    } else {
        Err(format!(
            "invalid host \"{to}\": expected a host name or IP address such as host.docker.internal (no scheme or port)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(url: &str, to: &str) -> Option<String> {
        rewrite(&url.parse().unwrap(), to).map(|u| u.to_string())
    }

    #[test]
    fn loopback_names_are_rewritten_keeping_port_path_and_query() {
        assert_eq!(
            r("http://localhost:3000/api/x?a=1", "host.docker.internal").as_deref(),
            Some("http://host.docker.internal:3000/api/x?a=1")
        );
        assert_eq!(
            r("https://127.0.0.1/hook", "gateway").as_deref(),
            Some("https://gateway/hook")
        );
        assert_eq!(
            r("http://[::1]:8000/", "10.0.0.2").as_deref(),
            Some("http://10.0.0.2:8000/")
        );
        assert_eq!(
            r("http://LOCALHOST:1/", "::1").as_deref(),
            Some("http://[::1]:1/")
        );
    }

    #[test]
    fn other_hosts_are_left_alone() {
        assert_eq!(r("http://example.com:3000/", "x"), None);
        assert_eq!(r("http://127.0.0.2/", "x"), None);
        assert_eq!(r("http://localhost.example.com/", "x"), None);
    }

    #[test]
    fn host_values() {
        assert_eq!(
            validate_host(" host.docker.internal ").unwrap(),
            "host.docker.internal"
        );
        assert_eq!(validate_host("[::1]").unwrap(), "::1");
        assert!(validate_host("http://x").is_err());
        assert!(validate_host("x:80").is_err());
        assert!(validate_host("").is_err());
    }
}
