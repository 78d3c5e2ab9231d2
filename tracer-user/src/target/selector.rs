//! Pure: which containers a daemon `add` with a name pattern (`web-*`) or label selector
//! (`--label app=web`) means, including containers created later.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Containers to record by name pattern and/or labels (all given parts must match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// Glob on the container name: `*` any run of characters, `?` one character.
    pub pattern: Option<String>,
    /// `key=value` (that value) or `key` (any value).
    pub labels: Vec<String>,
}

/// Whether a container argument is a pattern rather than a name.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

impl Selector {
    pub fn matches(&self, name: &str, labels: &HashMap<String, String>) -> bool {
        let name_ok = self
            .pattern
            .as_deref()
            .is_none_or(|p| glob(p.as_bytes(), name.as_bytes()));
        let labels_ok = self.labels.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(l.as_str()),
        });
        name_ok && labels_ok
    }

    /// How it is shown (`web-* app=web`).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.pattern.iter().cloned().collect();
        parts.extend(self.labels.iter().map(|l| format!("label {l}")));
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_labels() {
        let labels: HashMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        let web = Selector {
            pattern: Some("web-*".into()),
            labels: vec![],
        };
        assert!(web.matches("web-1", &labels) && web.matches("web-", &labels));
        assert!(!web.matches("db-1", &labels) && !web.matches("aweb-1", &labels));
        let q = Selector {
            pattern: Some("w?b".into()),
            labels: vec![],
        };
        assert!(q.matches("web", &labels) && !q.matches("weeb", &labels));
        let by_label = Selector {
            pattern: None,
            labels: vec!["app=web".into()],
        };
        assert!(by_label.matches("anything", &labels));
        assert!(!by_label.matches("x", &HashMap::new()));
        let key_only = Selector {
            pattern: None,
            labels: vec!["app".into(), "tier=front".into()],
        };
        assert!(!key_only.matches("x", &labels));
        assert!(is_pattern("web-*") && !is_pattern("web"));
        assert_eq!(
            Selector {
                pattern: Some("web-*".into()),
                labels: vec!["app=web".into()]
            }
            .describe(),
            "web-* label app=web"
        );
    }
}
