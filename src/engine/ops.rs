//! The broker's operations, one per API action. Each validates what it can before taking
//! the core lock, then does its work in one short locked step.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::Broker;
use super::core::{CancelOutcome, Core, Template};
use super::error::BrokerError;
use crate::domain::dedup;
use crate::domain::destination::Destination;
use crate::domain::dlq::DlqEntry;
use crate::domain::filter::Filter;
use crate::domain::log::LogEntry;
use crate::domain::message::{DeliveryOptions, MessageSpec, Origin};
use crate::domain::options::{Overrides, Pair, Parsed};
use crate::ids::MessageId;
use crate::signing::new_signing_key;
use crate::store::{Page, Published, SigningKeys};
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

pub struct PublishRequest {
    pub destination: Destination,
    pub parsed: Parsed,
    pub body: Bytes,
    pub caller_ip: IpAddr,
    /// Enqueue into this queue (FIFO) instead of delivering independently.
    pub queue: Option<String>,
}

#[derive(Debug)]
pub struct PublishResult {
    pub published: Published,
    pub deduplicated: bool,
}

/// A message as `GET /v2/messages/{id}` shows it.
pub struct MessageView {
    pub spec: Arc<MessageSpec>,
}

const DEFAULT_PAGE: usize = 100;

fn parse_cursor(cursor: Option<&str>) -> Result<Option<u64>> {
    cursor
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| BrokerError::Invalid(format!("invalid cursor \"{c}\"")))
        })
        .transpose()
}

fn parse_message_id(id: &str) -> Result<MessageId> {
    id.parse()
        .map_err(|_| BrokerError::not_found("message", id))
}

impl Broker {
    pub fn publish(&self, user: UserId, req: PublishRequest) -> Result<PublishResult> {
        let PublishRequest {
            destination,
            parsed,
            body,
            caller_ip,
            queue,
        } = req;
        let (target, is_group) = match destination {
            Destination::Url(url) => (url, false),
            Destination::Group(name) => (name, true),
            Destination::Api(name) => return Err(api_destination_error(&name, &parsed)),
        };
        if parsed.options.workflow.is_some() {
            if is_group {
                return Err(BrokerError::Invalid(
                    "workflow messages go to a URL, not to a URL group".into(),
                ));
            }
            return self.publish_workflow(user, target, parsed, body, caller_ip, queue);
        }
        let dedup_key = parsed
            .dedup
            .as_ref()
            .map(|d| dedup::key(d, &target, &body, &parsed.options.headers));
        self.with_core(|core, now, out| {
            if let Some(key) = &dedup_key
                && let Some(published) = core.store.dedup_get(user, key, now)
            {
                return Ok(PublishResult {
                    published,
                    deduplicated: true,
                });
            }
            let template = Template {
                target: &target,
                is_group,
                options: &parsed.options,
                body: &body,
                caller_ip,
                not_before: parsed.first_attempt_at(now),
                queue: queue.map(Into::into),
                schedule_id: None,
            };
            let mut produced = core.produce(user, &template, now, out)?;
            let published = if is_group {
                Published::Fanout(produced)
            } else {
                Published::Message(produced.remove(0).0)
            };
            if let Some(key) = dedup_key {
                core.store
                    .dedup_put(user, key, now + dedup::WINDOW_MS, published.clone(), now);
            }
            Ok(PublishResult {
                published,
                deduplicated: false,
            })
        })
    }

    pub fn message(&self, user: UserId, id: &str) -> Result<MessageView> {
        let mid = parse_message_id(id)?;
        let now = self.clock().now_ms();
        let core = self.lock();
        let spec = core
            .store
            .message(user, mid)
            .map(|m| m.spec.clone())
            .or_else(|| {
                core.store
                    .finished(user, mid, now - self.config().finished_message_grace_ms)
            })
            .ok_or_else(|| BrokerError::not_found("message", id))?;
        Ok(MessageView { spec })
    }

    pub fn cancel(&self, user: UserId, id: &str) -> Result<()> {
        let mid = parse_message_id(id)?;
        match self.with_core(|core, now, _| core.cancel(user, mid, now)) {
            CancelOutcome::NotFound => Err(BrokerError::not_found("message", id)),
            CancelOutcome::Cancelled | CancelOutcome::AlreadyRequested => Ok(()),
        }
    }

    /// A page of log entries, each with the creation time of its workflow run (a run's
    /// messages only; `workflowCreatedAt` tells runs that reused an id apart).
    pub fn logs(
        &self,
        user: UserId,
        filter: &Filter,
    ) -> Result<(Page<LogEntry>, Vec<Option<i64>>)> {
        let before = parse_cursor(filter.cursor.as_deref())?;
        // The issue caps a page at 100 (OpenAPI too); the SDK docs' 1000 just means more pages.
        let count = filter.count.unwrap_or(DEFAULT_PAGE).min(DEFAULT_PAGE);
        let core = self.lock();
        let page = core.store.log_page(
            user,
            before,
            &mut |e| {
                filter.state.is_none_or(|s| s.matches(e.state))
                    && filter.in_dates(e.time)
                    && filter.matches_spec(&e.spec)
            },
            count,
        );
        let runs = core.store.workflow_runs(user);
        let run_created = page
            .items
            .iter()
            .map(|e| {
                let tag = e.spec.options.workflow.as_deref()?;
                tag.run_created_at
                    .or_else(|| runs.created_at_of(&tag.run_id, e.spec.created_at))
            })
            .collect();
        Ok((page, run_created))
    }

    fn dlq_select(
        core: &mut Core,
        user: UserId,
        filter: &Filter,
        now: i64,
        count: usize,
    ) -> Result<Page<DlqEntry>> {
        let before = parse_cursor(filter.cursor.as_deref())?;
        // Listed ids are all taken: paging only applies to filter selections.
        let count = count.max(filter.dlq_ids.len());
        let retention = core.dlq_cutoff(now);
        core.store.expire_dlq(user, retention);
        Ok(core.store.dlq_page(
            user,
            before,
            &mut |e| {
                // Listed ids select on their own; the other filters apply otherwise.
                if !filter.dlq_ids.is_empty() {
                    return filter.dlq_ids.iter().any(|id| **id == *e.dlq_id);
                }
                // Failed workflow runs are the workflow DLQ's (`?source=workflow`).
                e.workflow.is_none()
                    && (filter.response_statuses.is_empty()
                        || filter.response_statuses.contains(&e.response.status))
                    && filter.in_dates(e.created_at)
                    && filter.matches_spec(&e.spec)
            },
            count,
        ))
    }

    pub fn dlq_list(&self, user: UserId, filter: &Filter) -> Result<Page<DlqEntry>> {
        let count = filter.count.unwrap_or(DEFAULT_PAGE).min(DEFAULT_PAGE);
        self.with_core(|core, now, _| Self::dlq_select(core, user, filter, now, count))
    }

    pub fn dlq_get(&self, user: UserId, dlq_id: &str) -> Result<DlqEntry> {
        self.with_core(|core, now, _| {
            let cutoff = core.dlq_cutoff(now);
            core.store.expire_dlq(user, cutoff);
            core.store.dlq(user, dlq_id).cloned()
        })
        .ok_or_else(|| BrokerError::not_found("dlq message", dlq_id))
    }

    pub fn dlq_delete(&self, user: UserId, dlq_id: &str) -> Result<()> {
        self.with_core(|core, _, _| core.store.remove_dlq(user, dlq_id))
            .map(|_| ())
            .ok_or_else(|| BrokerError::not_found("dlq message", dlq_id))
    }

    /// Deletes the selected entries (one page of them when selecting by filter); returns the
    /// number deleted and the cursor of the rest.
    pub fn dlq_delete_many(&self, user: UserId, filter: &Filter) -> Result<(usize, Option<u64>)> {
        let count = filter.bulk_count()?.unwrap_or(DEFAULT_PAGE);
        self.with_core(|core, now, _| {
            let page = Self::dlq_select(core, user, filter, now, count)?;
            let deleted = page
                .items
                .iter()
                .filter(|e| core.store.remove_dlq(user, &e.dlq_id).is_some())
                .count();
            Ok((deleted, page.next))
        })
    }

    /// Republishes one DLQ entry as a new message; configuration headers of the retry request
    /// override the stored ones.
    pub fn dlq_retry(
        &self,
        user: UserId,
        dlq_id: &str,
        overrides: &[Pair<'_>],
    ) -> Result<MessageId> {
        let filter = Filter {
            dlq_ids: vec![dlq_id.to_string()],
            ..Default::default()
        };
        let (ids, _) = self.dlq_retry_many(user, &filter, overrides)?;
        ids.into_iter()
            .next()
            .ok_or_else(|| BrokerError::not_found("dlq message", dlq_id))
    }

    pub fn dlq_retry_many(
        &self,
        user: UserId,
        filter: &Filter,
        overrides: &[Pair<'_>],
    ) -> Result<(Vec<MessageId>, Option<u64>)> {
        let count = filter.bulk_count()?.unwrap_or(DEFAULT_PAGE);
        // Parsed once, before anything leaves the DLQ.
        let overrides = Overrides::parse(overrides, &self.config().quota, self.clock().now_ms())?;
        self.with_core(|core, now, out| {
            let page = Self::dlq_select(core, user, filter, now, count)?;
            if let Some(missing) = filter
                .dlq_ids
                .iter()
                .find(|id| !page.items.iter().any(|e| *e.dlq_id == ***id))
            {
                return Err(BrokerError::not_found("dlq message", missing.as_str()));
            }
            // Queues first: a quota refusal must not leave the batch half retried.
            for q in page.items.iter().filter_map(|e| e.spec.queue_name()) {
                core.ensure_queue(user, q, now)?;
            }
            let mut ids = Vec::with_capacity(page.items.len());
            for entry in page.items {
                let (options, at) = overrides.apply(&entry.spec.options, now);
                core.store.remove_dlq(user, &entry.dlq_id);
                let spec = republished(&entry.spec, options, now, at);
                ids.push(spec.id);
                core.accept(user, spec, now, out);
            }
            Ok((ids, page.next))
        })
    }

    pub fn signing_keys(&self, user: UserId) -> SigningKeys {
        self.lock().store.signing_keys(user)
    }

    pub fn rotate_signing_keys(&self, user: UserId) -> SigningKeys {
        let mut core = self.lock();
        let old = core.store.signing_keys(user);
        let keys = SigningKeys {
            current: old.next,
            next: new_signing_key().into(),
        };
        core.store.set_signing_keys(user, keys.clone());
        keys
    }

    /// Deliveries of `user` in flight right now.
    pub fn in_flight(&self, user: UserId) -> u32 {
        self.lock().in_flight(user)
    }

    /// Unfinished messages of every user: waiting (delayed, queued, retrying) and in flight.
    pub fn backlog(&self) -> Backlog {
        let core = self.lock();
        let mut backlog = Backlog::default();
        for user in UserId::all() {
            let in_flight = core.in_flight(user) as usize;
            backlog.in_flight += in_flight;
            backlog.pending += core.store.message_count(user).saturating_sub(in_flight);
        }
        backlog
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub pending: usize,
    pub in_flight: usize,
}

/// Why an `api/<name>` destination cannot be published here.
fn api_destination_error(name: &str, parsed: &Parsed) -> BrokerError {
    if name == "llm" && parsed.options.callback.is_none() {
        return BrokerError::Invalid(
            "api/llm requires an Upstash-Callback header to receive the completion".into(),
        );
    }
    BrokerError::Invalid(format!(
        "api/{name} (Upstash-hosted APIs) is not available in the development server: publish to the provider's URL, e.g. an OpenAI-compatible server with the custom() provider"
    ))
}

/// A new message with a DLQ entry's destination, body and origin.
fn republished(
    old: &MessageSpec,
    options: Arc<DeliveryOptions>,
    now: i64,
    at: i64,
) -> Arc<MessageSpec> {
    // A retried callback no longer holds its source's queue slot.
    let origin = old.origin.as_ref().map(|o| {
        Box::new(Origin {
            trigger: None,
            slot_owner: None,
            ..Origin::clone(o)
        })
    });
    Arc::new(MessageSpec {
        id: MessageId::random(),
        url: old.url.clone(),
        body: old.body.clone(),
        created_at: now,
        not_before: at,
        caller_ip: old.caller_ip,
        options,
        origin,
    })
}
