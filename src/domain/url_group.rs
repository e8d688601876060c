//! URL groups ("topics"): a name for a set of endpoints; publishing to it fans out one
//! message per endpoint.

use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    pub name: Option<Arc<str>>,
    pub url: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UrlGroup {
    pub name: Arc<str>,
    pub created_at: i64,
    pub updated_at: i64,
    pub endpoints: Vec<Endpoint>,
    /// Headers merged into every publish to the group (`PATCH /v2/topics/{name}`); the
    /// publish request's own headers win.
    pub default_headers: Vec<(String, String)>,
}

impl UrlGroup {
    pub fn new(name: &str, now: i64) -> Self {
        Self {
            name: name.into(),
            created_at: now,
            updated_at: now,
            endpoints: Vec::new(),
            default_headers: Vec::new(),
        }
    }

    /// Adds endpoints; an endpoint whose URL is already there gets the new name.
    pub fn upsert(&mut self, endpoints: Vec<Endpoint>, now: i64) {
        for e in endpoints {
            match self.endpoints.iter_mut().find(|x| x.url == e.url) {
                Some(existing) => existing.name = e.name,
                None => self.endpoints.push(e),
            }
        }
        self.updated_at = now;
    }

    /// Removes endpoints matching by URL when given, else by name; returns how many went.
    pub fn remove(&mut self, selectors: &[(Option<String>, Option<String>)], now: i64) -> usize {
        let before = self.endpoints.len();
        self.endpoints.retain(|e| {
            !selectors.iter().any(|(url, name)| match (url, name) {
                (Some(u), _) => *e.url == **u,
                (None, Some(n)) => e.name.as_deref() == Some(n.as_str()),
                (None, None) => false,
            })
        });
        self.updated_at = now;
        before - self.endpoints.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: Option<&str>, url: &str) -> Endpoint {
        Endpoint {
            name: name.map(Into::into),
            url: url.into(),
        }
    }

    #[test]
    fn upsert_by_url_and_remove_by_url_or_name() {
        let mut g = UrlGroup::new("g", 1);
        g.upsert(vec![ep(Some("a"), "http://a"), ep(None, "http://b")], 2);
        g.upsert(
            vec![ep(Some("a2"), "http://a"), ep(Some("c"), "http://c")],
            3,
        );
        assert_eq!(
            g.endpoints,
            [
                ep(Some("a2"), "http://a"),
                ep(None, "http://b"),
                ep(Some("c"), "http://c")
            ]
        );
        assert_eq!((g.created_at, g.updated_at), (1, 3));
        assert_eq!(
            g.remove(
                &[(Some("http://b".into()), None), (None, Some("c".into()))],
                4
            ),
            2
        );
        assert_eq!(g.endpoints, [ep(Some("a2"), "http://a")]);
        assert_eq!(g.remove(&[(None, None)], 5), 0);
    }
}
