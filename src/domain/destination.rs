//! Where a publish goes, read from the raw request target: `/v2/publish/https://x.io/a?b=1`.
//!
//! The destination is everything after the route prefix, not percent-decoded and with `//`
//! intact; the request's query string belongs to it, minus our own `qstash_token` and
//! `upstash-*` parameters.

use std::borrow::Cow;

use super::options::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An absolute `http(s)://` URL, query included.
    Url(String),
    /// A URL group (topic) name.
    Group(String),
    /// `api/<name>` (the deprecated managed-LLM form).
    Api(String),
}

/// Classifies the raw path remainder and re-attaches the destination's own query parameters.
pub fn parse(raw: &str, query: Option<&str>) -> Result<Destination, InvalidInput> {
    let raw = repair(raw);
    if raw.is_empty() {
        return Err(InvalidInput::new(
            "destination is missing: expected /v2/publish/<url or url group name>",
        ));
    }
    if starts_with_ci(&raw, "http://") || starts_with_ci(&raw, "https://") {
        let mut url = raw.into_owned();
        if let Some(q) = query.and_then(destination_query) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&q);
        }
        validate_url(&url)
            .map_err(|why| InvalidInput::new(format!("invalid destination \"{url}\": {why}")))?;
        return Ok(Destination::Url(url));
    }
    if let Some(name) = raw.strip_prefix("api/") {
        return Ok(Destination::Api(name.to_string()));
    }
    validate_name(&raw, "url group name")?;
    Ok(Destination::Group(raw.into_owned()))
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Undoes what proxies and clients commonly do to a URL embedded in a path.
fn repair(raw: &str) -> Cow<'_, str> {
    if starts_with_ci(raw, "http%3a") || starts_with_ci(raw, "https%3a") {
        return percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
            .into();
    }
    for scheme in ["http:/", "https:/"] {
        if starts_with_ci(raw, scheme) && !raw[scheme.len()..].starts_with('/') {
            return format!("{scheme}/{}", &raw[scheme.len()..]).into();
        }
    }
    Cow::Borrowed(raw)
}

/// `[A-Za-z0-9._-]+`, the rule for URL group, queue and schedule names.
pub fn validate_name(name: &str, what: &str) -> Result<(), InvalidInput> {
    if name.is_empty()
        || name.len() > 256
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(InvalidInput::new(format!(
            "invalid {what} \"{name}\": only letters, digits, '.', '_' and '-' are allowed"
        )));
    }
    Ok(())
}

/// An absolute http(s) URL with a host. Local and private addresses are fine: that is the
/// point of a development server.
pub fn validate_url(url: &str) -> Result<(), String> {
    if plainly_valid(url) {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err("the URL must start with http:// or https://".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// The everyday shape, checked without allocating: `http(s)://` + a host name of letters,
/// digits, `.-_` (or a dotted IPv4 address), an optional port, and a printable path. Anything else
/// goes through the full URL parser, which also words the error.
fn plainly_valid(url: &str) -> bool {
    let rest = match url.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("https://") => &url[8..],
        _ => match url.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return false,
        },
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && (host.bytes().any(|b| b.is_ascii_alphabetic())
            || host.parse::<std::net::Ipv4Addr>().is_ok());
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    });
    host_ok && port_ok && tail.bytes().all(|b| b > 0x20 && b < 0x7f)
}

fn is_ours(name: &str) -> bool {
    name == "qstash_token"
        || name
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("upstash-"))
}

/// The query parameters that belong to the destination, in their original order and encoding.
pub fn destination_query(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            !is_ours(&name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// `?upstash-retries=3&…` as (lower-case name, decoded value) pairs, the query twins of the
/// configuration headers.
pub fn config_query_params(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else { return Vec::new() };
    if !q
        .as_bytes()
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"upstash-"))
    {
        return Vec::new();
    }
    url::form_urlencoded::parse(q.as_bytes())
        .filter(|(n, _)| {
            n.get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("upstash-"))
        })
        .map(|(n, v)| (n.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

/// `host:port` of a URL, the unit of per-destination concurrency.
pub fn host_key(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// (`host:port`, path) of a URL: the units of delivery slots (see `engine::core::slots`).
pub fn route_key(url: &str) -> (&str, &str) {
    let host = host_key(url);
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let after = rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]);
    let path = after.split(['?', '#']).next().unwrap_or("");
    (host, if path.is_empty() { "/" } else { path })
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_keys() {
        assert_eq!(
            super::route_key("http://u:p@localhost:3000/api/a?x=1#f"),
            ("localhost:3000", "/api/a")
        );
        assert_eq!(
            super::route_key("https://example.com"),
            ("example.com", "/")
        );
        assert_eq!(
            super::route_key("https://example.com?q"),
            ("example.com", "/")
        );
    }

    use super::*;

    #[test]
    fn url_with_query_keeps_order_and_drops_ours() {
        let d = parse(
            "https://example.com/123/",
            Some("asdasd=ooo&qstash_token=t&Upstash-Retries=1&b=%20x"),
        )
        .unwrap();
        assert_eq!(
            d,
            Destination::Url("https://example.com/123/?asdasd=ooo&b=%20x".into())
        );
    }

    #[test]
    fn double_slashes_and_raw_encoding_survive() {
        let d = parse("http://localhost:3000//a//b%2Fc", None).unwrap();
        assert_eq!(
            d,
            Destination::Url("http://localhost:3000//a//b%2Fc".into())
        );
    }

    #[test]
    fn collapsed_and_encoded_schemes_are_repaired() {
        assert_eq!(
            parse("https:/example.com/x", None).unwrap(),
            Destination::Url("https://example.com/x".into())
        );
        assert_eq!(
            parse("https%3A%2F%2Fexample.com%2Fx", None).unwrap(),
            Destination::Url("https://example.com/x".into())
        );
    }

    #[test]
    fn groups_apis_and_errors() {
        assert_eq!(
            parse("my-group_1.v2", None).unwrap(),
            Destination::Group("my-group_1.v2".into())
        );
        assert_eq!(
            parse("api/llm", None).unwrap(),
            Destination::Api("llm".into())
        );
        assert!(parse("", None).unwrap_err().message.contains("missing"));
        assert!(
            parse("bad name!", None)
                .unwrap_err()
                .message
                .contains("url group name")
        );
        assert!(
            parse("http://", None)
                .unwrap_err()
                .message
                .contains("invalid destination")
        );
        assert!(validate_url("ftp://x.io").is_err());
        assert!(validate_url("http://127.0.0.1:99999/x").is_err());
        assert!(validate_url("http://[::1]:8080/x").is_ok());
        assert!(validate_url("http://user:pw@host:81/x").is_ok());
        assert!(
            validate_url("http://1.2.3.999/x").is_err(),
            "IP literals take the full parser"
        );
        assert!(
            validate_url("http://localhost:3000/a b").is_ok(),
            "the full parser encodes spaces"
        );
        assert!(plainly_valid("https://Example.com:443/a?b=c#d"));
        assert!(plainly_valid("http://127.0.0.1:8080/x"));
        assert!(validate_url("http://127.0.0.1:1/x").is_ok());
    }

    #[test]
    fn config_params() {
        let p = config_query_params(Some(
            "a=1&upstash-delay=100s&Upstash-Forward-X=a+b&qstash_token=t",
        ));
        assert_eq!(
            p,
            [
                ("upstash-delay".into(), "100s".into()),
                ("upstash-forward-x".into(), "a b".into())
            ]
        );
        assert!(config_query_params(Some("a=1")).is_empty());
    }

    #[test]
    fn host_keys() {
        assert_eq!(host_key("http://127.0.0.1:8080/a?b"), "127.0.0.1:8080");
        assert_eq!(host_key("https://user:pw@example.com"), "example.com");
        assert_eq!(host_key("https://example.com?x=1"), "example.com");
    }
}
