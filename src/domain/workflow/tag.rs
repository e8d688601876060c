//! What makes a message part of a workflow run: the `Upstash-Workflow-*` and
//! `Upstash-Feature-Set` headers of one configuration level (the message itself, its callback
//! or its failure callback), parsed into a [`WorkflowTag`].

use std::sync::Arc;

use super::config::RunDefaults;
use crate::domain::options::{InvalidInput, Pair};

/// How a workflow message is treated (`Upstash-Workflow-CallType`, default `step`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CallType {
    /// A step of the run (the Init message too): delivered as the run's steps array.
    Step,
    /// The third-party request of `context.call`: delivered unchanged.
    ToCallback,
    /// The callback of a `toCallback` message: the callback JSON, to the workflow URL.
    FromCallback,
    /// The failure callback of a step: the failure-callback JSON.
    FailureCall,
}

impl CallType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::ToCallback => "toCallback",
            Self::FromCallback => "fromCallback",
            Self::FailureCall => "failureCall",
        }
    }

    fn parse(v: &str) -> Option<Self> {
        [
            Self::Step,
            Self::ToCallback,
            Self::FromCallback,
            Self::FailureCall,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(v))
    }
}

/// The SDK's capability flags (`Upstash-Feature-Set`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Features(u8);

impl Features {
    pub const LAZY_FETCH: Self = Self(1);
    pub const INITIAL_BODY: Self = Self(2);
    pub const DETECT_TRIGGER: Self = Self(4);
    pub const TRIGGER_ON_CONFIG: Self = Self(8);
    pub const NO_DELETE: Self = Self(16);

    pub fn parse(list: &str) -> Self {
        let mut f = Self::default();
        for name in list.split(',').map(str::trim) {
            f.0 |= match name {
                "LazyFetch" => Self::LAZY_FETCH.0,
                "InitialBody" => Self::INITIAL_BODY.0,
                "WF_DetectTrigger" => Self::DETECT_TRIGGER.0,
                "WF_TriggerOnConfig" => Self::TRIGGER_ON_CONFIG.0,
                "WF_NoDelete" => Self::NO_DELETE.0,
                _ => 0,
            };
        }
        f
    }

    /// The flags as an `Upstash-Feature-Set` value (for messages the server writes anew).
    pub fn names(self) -> String {
        [
            (Self::LAZY_FETCH, "LazyFetch"),
            (Self::INITIAL_BODY, "InitialBody"),
            (Self::DETECT_TRIGGER, "WF_DetectTrigger"),
            (Self::TRIGGER_ON_CONFIG, "WF_TriggerOnConfig"),
            (Self::NO_DELETE, "WF_NoDelete"),
        ]
        .into_iter()
        .filter(|(f, _)| self.has(*f))
        .map(|(_, n)| n)
        .collect::<Vec<_>>()
        .join(",")
    }

    pub fn has(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether an empty delivery body is safe: the SDK then fetches the steps itself. Only
    /// `@upstash/workflow` ≥ 1.0 (the SDK that sends `WF_TriggerOnConfig`) does; the Python SDK
    /// 2.x announces `LazyFetch` too but raises "Only first call can have an empty body".
    pub fn can_lazy_fetch(self) -> bool {
        self.has(Self::LAZY_FETCH) && self.has(Self::TRIGGER_ON_CONFIG)
    }
}

/// The workflow headers of one configuration level.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WorkflowTag {
    pub run_id: Arc<str>,
    /// `Upstash-Workflow-Init: true`: the first message of a new run.
    pub init: bool,
    pub url: Option<Arc<str>>,
    pub call_type: CallType,
    pub features: Features,
    /// `Upstash-Workflow-Invoke: true`: the body is an invoke request (`context.invoke`).
    pub invoke: bool,
    /// `upstash-workflow-trigger-by-sdk: true`: the SDK re-publishing the Init message of a
    /// run that `/v2/trigger` started.
    pub trigger_by_sdk: bool,
    /// On an Init message: the configuration every later message of the run inherits.
    pub defaults: Option<Arc<RunDefaults>>,
    /// On a failure-function message the server created: the creation time of the run it
    /// reports on (run ids may be reused once a run ends; the id alone could find a later run).
    pub run_created_at: Option<i64>,
}

fn flag(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// Parses the workflow headers of one level. `own` holds its `(suffix, value)` pairs (suffix
/// after the level's prefix: `workflow-runid`, `feature-set`, …), `all` every pair of the
/// request (an Init message's run configuration is taken from them), `display` the level's
/// header prefix for error messages. No run id: not a workflow message.
pub fn parse(
    own: &[Pair<'_>],
    all: &[Pair<'_>],
    display: &str,
    top_level: bool,
) -> Result<Option<WorkflowTag>, InvalidInput> {
    let mut run_id = None;
    let (mut init, mut invoke, mut trigger_by_sdk) = (false, false, false);
    let (mut url, mut call_type, mut features) = (None, CallType::Step, Features::default());
    for &(suffix, value) in own {
        let text = std::str::from_utf8(value)
            .map_err(|_| {
                InvalidInput::new(format!("header {display}{suffix} must be valid UTF-8 text"))
            })?
            .trim();
        match suffix {
            "workflow-runid" if !text.is_empty() => run_id = Some(text),
            "workflow-init" => init = flag(text),
            "workflow-url" if !text.is_empty() => url = Some(Arc::from(text)),
            "workflow-calltype" if !text.is_empty() => {
                call_type = CallType::parse(text).ok_or_else(|| {
                    InvalidInput::header(
                        &format!("{display}Workflow-CallType"),
                        text,
                        "expected step, toCallback, fromCallback or failureCall",
                    )
                })?
            }
            "feature-set" => features = Features::parse(text),
            "workflow-invoke" => invoke = flag(text),
            "workflow-trigger-by-sdk" => trigger_by_sdk = flag(text),
            _ => {}
        }
    }
    let Some(run_id) = run_id else {
        return Ok(None);
    };
    if run_id.contains('/') || run_id.len() > 256 {
        return Err(InvalidInput::header(
            &format!("{display}Workflow-RunId"),
            run_id,
            "expected a run id of at most 256 characters without '/'",
        ));
    }
    let defaults = (top_level && init && call_type == CallType::Step)
        .then(|| Arc::new(RunDefaults::capture(all)));
    Ok(Some(WorkflowTag {
        run_id: run_id.into(),
        init,
        url,
        call_type,
        features,
        invoke,
        trigger_by_sdk,
        defaults,
        run_created_at: None,
    }))
}

/// The run id, `Init` flag and call type of a request's top-level headers, without parsing
/// the rest: enough to look up the run whose configuration the message inherits.
pub fn peek<'a>(pairs: &[Pair<'a>]) -> Option<(&'a str, bool, CallType)> {
    let mut run_id = None;
    let (mut init, mut call_type) = (false, CallType::Step);
    for &(name, value) in pairs {
        let Some(suffix) = name.strip_prefix("upstash-workflow-") else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        match suffix {
            "runid" if run_id.is_none() => run_id = Some(text.trim()),
            "init" => init = flag(text),
            "calltype" => call_type = CallType::parse(text.trim()).unwrap_or(CallType::Step),
            _ => {}
        }
    }
    run_id
        .filter(|r| !r.is_empty())
        .map(|r| (r, init, call_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_and_lazy_fetch() {
        let js = Features::parse("LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig");
        assert!(js.can_lazy_fetch() && js.has(Features::INITIAL_BODY));
        let py = Features::parse("LazyFetch, InitialBody, WF_DetectTrigger");
        assert!(!py.can_lazy_fetch() && py.has(Features::DETECT_TRIGGER));
        assert!(Features::parse("WF_NoDelete,InitialBody").has(Features::NO_DELETE));
    }

    #[test]
    fn tags_need_a_run_id_and_a_known_call_type() {
        let own: Vec<Pair<'_>> = vec![("workflow-init", b"true"), ("feature-set", b"LazyFetch")];
        assert!(parse(&own, &[], "Upstash-", true).unwrap().is_none());
        let own: Vec<Pair<'_>> = vec![
            ("workflow-runid", b"wfr_a"),
            ("workflow-calltype", b"fromCallback"),
        ];
        let tag = parse(&own, &[], "Upstash-Callback-", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (&*tag.run_id, tag.call_type, tag.init),
            ("wfr_a", CallType::FromCallback, false)
        );
        let bad: Vec<Pair<'_>> = vec![("workflow-runid", b"wfr_a"), ("workflow-calltype", b"x")];
        let err = parse(&bad, &[], "Upstash-", true).unwrap_err();
        assert!(
            err.message.contains("Upstash-Workflow-CallType"),
            "{}",
            err.message
        );
    }

    #[test]
    fn peek_reads_the_top_level_only() {
        let pairs: Vec<Pair<'_>> = vec![
            ("upstash-callback-workflow-runid", b"wfr_cb"),
            ("upstash-workflow-runid", b"wfr_x"),
            ("upstash-workflow-calltype", b"toCallback"),
        ];
        assert_eq!(peek(&pairs), Some(("wfr_x", false, CallType::ToCallback)));
    }
}
