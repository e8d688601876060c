//! Run configuration (`WF_TriggerOnConfig`): since `@upstash/workflow` 1.0 only the Init
//! message carries the user's configuration. The server keeps those headers per run and
//! applies them to every later message of the run that goes to the workflow, below the
//! message's own headers (the Python SDK still sends its whole configuration every time).

use crate::domain::options::Pair;

/// The configuration headers of a run's Init message, as `(lower-case name, value)`.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunDefaults {
    /// For step messages (and the messages the server creates for the run).
    step: Box<[(String, String)]>,
}

/// Whether an Init header belongs to the run's configuration (`delivery.md` §14.14).
fn kept(name: &str) -> bool {
    const EXACT: [&str; 5] = [
        "upstash-retries",
        "upstash-retry-delay",
        "upstash-flow-control-key",
        "upstash-flow-control-value",
        "upstash-label",
    ];
    if EXACT.contains(&name) || name.starts_with("upstash-failure-callback") {
        return true;
    }
    // The SDK's own forwarded headers are left out: they describe one message, not the run.
    // Every step carries its own protocol version, the callback of `context.call` must arrive
    // without it (the SDK then reads the callback JSON as it is instead of as a steps array),
    // and a call result's markers (`Upstash-Workflow-Callback`, `-StepId`, …) on a later step
    // would make the SDK take that step for a call result.
    name.starts_with("upstash-forward-") && !name.starts_with("upstash-forward-upstash-workflow-")
}

impl RunDefaults {
    /// Takes the run configuration out of an Init message's headers.
    pub fn capture(pairs: &[Pair<'_>]) -> Self {
        let step = pairs
            .iter()
            .filter(|(name, _)| kept(name))
            .filter_map(|(name, value)| {
                Some((
                    name.to_string(),
                    std::str::from_utf8(value).ok()?.to_string(),
                ))
            })
            .collect();
        Self { step }
    }

    /// Below the headers of a step message (or one the server creates for the run).
    pub fn for_step(&self) -> &[(String, String)] {
        &self.step
    }

    /// Below the headers of a `context.call` message: the configuration moves one level down
    /// to the callback that brings the result back (`Upstash-Callback-*`), and never reaches
    /// the third party itself.
    pub fn for_call(&self) -> Vec<(String, String)> {
        self.step
            .iter()
            .map(|(name, value)| {
                let rest = name.strip_prefix("upstash-").unwrap_or(name);
                (format!("upstash-callback-{rest}"), value.clone())
            })
            .collect()
    }

    /// The first label, if the run has one.
    pub fn label(&self) -> Option<&str> {
        self.step
            .iter()
            .find(|(n, _)| n == "upstash-label")
            .and_then(|(_, v)| v.split(',').map(str::trim).find(|l| !l.is_empty()))
    }

    /// Heap bytes, for the memory accounting of finished runs.
    pub fn heap_size(&self) -> usize {
        self.step.iter().map(|(n, v)| n.len() + v.len() + 48).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_configuration_and_moves_it_to_the_callback_for_calls() {
        let pairs: Vec<Pair<'_>> = vec![
            ("upstash-workflow-runid", b"wfr_a"),
            ("upstash-forward-x-user", b"u"),
            ("upstash-forward-upstash-workflow-sdk-version", b"1"),
            ("upstash-forward-upstash-workflow-callback", b"true"),
            ("upstash-retries", b"2"),
            ("upstash-delay", b"10s"),
            ("upstash-failure-callback", b"http://f"),
            ("upstash-failure-callback-forward-x-user", b"u"),
            ("upstash-label", b"a,b"),
            ("content-type", b"text/plain"),
        ];
        let d = RunDefaults::capture(&pairs);
        let names: Vec<&str> = d.for_step().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "upstash-forward-x-user",
                "upstash-retries",
                "upstash-failure-callback",
                "upstash-failure-callback-forward-x-user",
                "upstash-label"
            ]
        );
        assert_eq!(d.label(), Some("a"));
        let call: Vec<String> = d.for_call().into_iter().map(|(n, _)| n).collect();
        assert_eq!(call[0], "upstash-callback-forward-x-user");
        assert_eq!(call[2], "upstash-callback-failure-callback");
    }
}
