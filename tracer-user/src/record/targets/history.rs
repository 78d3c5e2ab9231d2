//! Pure: when a target was first traced and when each of its instances began, kept with what
//! it learned: the learning curve's time axis (`why.json`, the report, `status`).

/// When a target was first traced, and when each of its later instances (restarts,
/// re-creations) was traced from creation; seconds since the epoch. The last
/// [`History::MAX_INSTANCES`] instances are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct History {
    pub since: Option<u64>,
    pub instances: Vec<u64>,
}

impl History {
    pub const MAX_INSTANCES: usize = 1000;

    /// Traced from `at` on (the first time counts).
    pub fn traced(&mut self, at: u64) {
        self.since = Some(self.since.map_or(at, |s| s.min(at)));
    }

    /// A new instance at `at`.
    pub fn instance(&mut self, at: u64) {
        self.traced(at);
        if self.instances.len() >= Self::MAX_INSTANCES {
            self.instances.remove(0);
        }
        self.instances.push(at);
    }

    /// The last instance began at `at` (the kernel's time) if that is a little earlier than
    /// when it was seen (at most a minute: anything else is not a time of this instance).
    pub fn began_at(&mut self, at: u64) {
        let Some(last) = self.instances.last_mut() else {
            return;
        };
        if at < *last && *last - at <= 60 {
            *last = at;
            self.traced(at);
        }
    }

    /// Takes in a saved history (the daemon's state).
    pub fn merge(&mut self, other: &History) {
        if let Some(s) = other.since {
            self.traced(s);
        }
        let mut all: Vec<u64> = other
            .instances
            .iter()
            .chain(&self.instances)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        let skip = all.len().saturating_sub(Self::MAX_INSTANCES);
        self.instances = all.split_off(skip);
    }
}
