//! A queue the daemon owns a row for: what every stage of the pipeline passes along.

/// A queue the daemon owns a row for.
///
/// Shared, not copied: a cycle holds each queue's target in the selection, its
/// observation, its planned write and its report at once, and at 5,000 queues a copy of
/// the four strings in each was megabytes of the peak. A clone is a reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct Target(std::sync::Arc<TargetData>);

/// What a [`Target`] holds; its fields read through the target (`t.name`).
#[derive(Debug, PartialEq, Eq)]
pub struct TargetData {
    pub id: String,
    pub name: String,
    /// The row key: the name or the id, per `table.key`.
    pub key: String,
    pub division: String,
}

impl Target {
    pub fn new(id: String, name: String, key: String, division: String) -> Self {
        Self(std::sync::Arc::new(TargetData {
            id,
            name,
            key,
            division,
        }))
    }
}

impl std::ops::Deref for Target {
    type Target = TargetData;

    fn deref(&self) -> &TargetData {
        &self.0
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
