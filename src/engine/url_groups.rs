//! URL group management.

use super::Broker;
use super::error::BrokerError;
use crate::domain::destination::{validate_name, validate_url};
use crate::domain::options;
use crate::domain::url_group::{Endpoint, UrlGroup};
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

fn not_found(name: &str) -> BrokerError {
    BrokerError::not_found("url group", name)
}

impl Broker {
    /// Adds (or renames) endpoints, creating the group on first use.
    pub fn add_endpoints(
        &self,
        user: UserId,
        name: &str,
        endpoints: Vec<(Option<String>, String)>,
    ) -> Result<()> {
        validate_name(name, "url group name")?;
        if endpoints.is_empty() {
            return Err(BrokerError::Invalid(
                "endpoints must contain at least one {\"url\": ...}".into(),
            ));
        }
        let mut parsed = Vec::with_capacity(endpoints.len());
        for (endpoint_name, url) in endpoints {
            validate_url(&url).map_err(|why| {
                BrokerError::Invalid(format!("invalid endpoint url \"{url}\": {why}"))
            })?;
            parsed.push(Endpoint {
                name: endpoint_name.filter(|n| !n.is_empty()).map(Into::into),
                url: url.into(),
            });
        }
        let quota = self.config().quota.clone();
        self.with_core(|core, now, _| {
            let mut group = match core.store.url_group(user, name) {
                Some(g) => g.clone(),
                None => {
                    if core.store.url_group_count(user) >= quota.max_url_groups {
                        return Err(BrokerError::quota(
                            &quota,
                            quota.max_url_groups,
                            "url groups",
                        ));
                    }
                    UrlGroup::new(name, now)
                }
            };
            group.upsert(parsed, now);
            if group.endpoints.len() > quota.max_endpoints_per_group {
                return Err(BrokerError::quota(
                    &quota,
                    quota.max_endpoints_per_group,
                    "endpoints per url group",
                ));
            }
            core.store.put_url_group(user, group);
            Ok(())
        })
    }

    /// Removes endpoints by URL or name; the group goes away with its last endpoint.
    pub fn remove_endpoints(
        &self,
        user: UserId,
        name: &str,
        selectors: Vec<(Option<String>, Option<String>)>,
    ) -> Result<()> {
        if selectors.iter().any(|(u, n)| u.is_none() && n.is_none()) {
            return Err(BrokerError::Invalid(
                "each endpoint to remove needs a url or a name".into(),
            ));
        }
        self.with_core(|core, now, _| {
            let mut group = core
                .store
                .url_group(user, name)
                .cloned()
                .ok_or_else(|| not_found(name))?;
            group.remove(&selectors, now);
            if group.endpoints.is_empty() {
                core.store.remove_url_group(user, name);
            } else {
                core.store.put_url_group(user, group);
            }
            Ok(())
        })
    }

    pub fn url_groups(&self, user: UserId) -> Vec<UrlGroup> {
        self.lock()
            .store
            .url_groups(user)
            .into_iter()
            .cloned()
            .collect()
    }

    pub fn url_group(&self, user: UserId, name: &str) -> Result<UrlGroup> {
        self.lock()
            .store
            .url_group(user, name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    /// Deleting a group that does not exist succeeds (SDK fixtures rely on it).
    pub fn delete_url_group(&self, user: UserId, name: &str) {
        self.lock().store.remove_url_group(user, name);
    }

    pub fn set_url_group_headers(
        &self,
        user: UserId,
        name: &str,
        headers: Vec<(String, String)>,
    ) -> Result<()> {
        // Checked now, or every later publish to the group would fail on a header its caller
        // never sent.
        let lower: Vec<(String, &str)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        let pairs: Vec<_> = lower
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        options::parse(&pairs, &self.config().quota, self.clock().now_ms()).map_err(|e| {
            let message = format!("invalid default header for url group {name}: {}", e.message);
            BrokerError::from(options::InvalidInput { message, ..e })
        })?;
        self.with_core(|core, now, _| {
            let mut group = core
                .store
                .url_group(user, name)
                .cloned()
                .ok_or_else(|| not_found(name))?;
            group.default_headers = headers;
            group.updated_at = now;
            core.store.put_url_group(user, group);
            Ok(())
        })
    }

    /// The default headers of a group, lower-cased, to be parsed after the request's own.
    pub fn url_group_defaults(&self, user: UserId, name: &str) -> Vec<(String, String)> {
        self.lock()
            .store
            .url_group(user, name)
            .map(|g| {
                g.default_headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
