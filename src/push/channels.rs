//! Which queue is subscribed on which channel: decided without I/O.
//!
//! Genesys allows 1,000 topics per channel and 20 channels per OAuth client (a 21st
//! silently removes the oldest), and the table holds 5,000 rows, so 5,000 queues take 5
//! channels. When the selection changes, queues stay on the channel they are on (so only
//! the channels that change are resubscribed, each with one PUT), gone queues leave, new
//! ones fill the channels with room first, and a new channel is opened only when all are
//! full.

use std::collections::HashSet;

/// The topics (as queue ids) of each channel slot, in slot order.
pub type Assignment = Vec<Vec<String>>;

/// The new assignment, and the queues that fit no channel (they are only polled).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub slots: Assignment,
    pub left_out: Vec<String>,
}

impl Plan {
    /// Slots whose queue list differs from `current` (to resubscribe), including new ones.
    pub fn changed(&self, current: &Assignment) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                current.get(i).is_none_or(|c| {
                    let a: HashSet<&String> = c.iter().collect();
                    let b: HashSet<&String> = self.slots[i].iter().collect();
                    a != b
                })
            })
            .collect()
    }
}

/// Assigns `wanted` (queue ids, in selection order) to channel slots.
pub fn assign(
    current: &Assignment,
    wanted: &[String],
    per_channel: usize,
    max_channels: usize,
) -> Plan {
    let per_channel = per_channel.max(1);
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut placed: HashSet<&str> = HashSet::new();
    let mut slots: Assignment = current
        .iter()
        .take(max_channels)
        .map(|slot| {
            slot.iter()
                .filter(|q| wanted_set.contains(q.as_str()) && placed.insert(q.as_str()))
                .take(per_channel)
                .cloned()
                .collect()
        })
        .collect();
    let mut left_out = Vec::new();
    for q in wanted {
        if placed.contains(q.as_str()) {
            continue;
        }
        placed.insert(q.as_str());
        if let Some(slot) = slots.iter_mut().find(|s| s.len() < per_channel) {
            slot.push(q.clone());
        } else if slots.len() < max_channels {
            slots.push(vec![q.clone()]);
        } else {
            left_out.push(q.clone());
        }
    }
    // Trailing empty slots close their channel; an empty slot in the middle keeps its
    // index so the others keep theirs (it is reused by the next new queue).
    while slots.last().is_some_and(Vec::is_empty) {
        slots.pop();
    }
    Plan { slots, left_out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: std::ops::Range<usize>) -> Vec<String> {
        r.map(|i| format!("q{i}")).collect()
    }

    #[test]
    fn one_channel_per_thousand_queues() {
        let p = assign(&Vec::new(), &ids(0..2500), 1000, 20);
        assert_eq!(
            p.slots.iter().map(Vec::len).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        assert!(p.left_out.is_empty());
        let p = assign(&Vec::new(), &ids(0..5000), 1000, 20);
        assert_eq!(p.slots.len(), 5);
    }

    #[test]
    fn never_more_than_the_channel_limit() {
        let p = assign(&Vec::new(), &ids(0..25), 1, 20);
        assert_eq!(p.slots.len(), 20);
        assert_eq!(p.left_out, ids(20..25));
    }

    #[test]
    fn selection_changes_touch_only_the_channels_that_change() {
        let current = assign(&Vec::new(), &ids(0..2500), 1000, 20).slots;
        // q5 leaves (slot 0), q2600 and q2601 join (slot 2 has room).
        let mut wanted = ids(0..2500);
        wanted.retain(|q| q != "q5");
        wanted.extend(["q2600".to_owned(), "q2601".to_owned()]);
        let p = assign(&current, &wanted, 1000, 20);
        assert_eq!(p.changed(&current), [0, 2]);
        assert!(!p.slots[0].contains(&"q5".to_owned()));
        assert_eq!(p.slots[1], current[1], "untouched");
        assert!(
            p.slots[0].contains(&"q2600".to_owned()),
            "q5's place is reused"
        );
        assert_eq!(p.slots[2].len(), 501);
        // Unchanged selection: nothing to do.
        assert!(
            assign(&p.slots, &wanted, 1000, 20)
                .changed(&p.slots)
                .is_empty()
        );
    }

    #[test]
    fn emptied_channels_at_the_end_close_and_new_queues_fill_gaps() {
        let current = assign(&Vec::new(), &ids(0..1500), 1000, 20).slots;
        let p = assign(&current, &ids(0..900), 1000, 20);
        assert_eq!(p.slots.len(), 1);
        let p = assign(&current, &ids(1000..1600), 1000, 20);
        assert_eq!(p.slots.len(), 2);
        assert_eq!(
            p.slots[0].len(),
            100,
            "the gap in slot 0 takes the new queues"
        );
        assert_eq!(p.slots[1].len(), 500);
    }
}
