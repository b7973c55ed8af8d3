//! A slab whose keys carry a generation, so stale keys are detected (STYLE.md rule 5).

use slab::Slab;

/// A key into [`Slots`]: slot index and the generation the slot had when the value was inserted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct SlotKey {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// Values in reusable slots; a key from an earlier occupant of a slot finds nothing.
///
/// A slot can also be *reserved* ([`Slots::reserve`]): its key is issued now and its value
/// comes later ([`Slots::fill`]); until then lookups find nothing (a torrent whose metadata is
/// still being fetched has an id but no torrent yet).
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slab: Slab<(u32, Option<T>)>,
    next_generation: u32,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self {
            slab: Slab::new(),
            next_generation: 0,
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn insert(&mut self, value: T) -> SlotKey {
        self.insert_slot(Some(value))
    }

    /// Issues a key whose value comes later with [`Slots::fill`]; until then lookups with it
    /// find nothing. Free it with [`Slots::unreserve`] if the value never comes.
    pub(crate) fn reserve(&mut self) -> SlotKey {
        self.insert_slot(None)
    }

    /// Puts the value of a reserved key; returns `false` (dropping `value`) if `key` is not
    /// reserved.
    pub(crate) fn fill(&mut self, key: SlotKey, value: T) -> bool {
        match self.slab.get_mut(key.slot as usize) {
            Some((generation, slot @ None)) if *generation == key.generation => {
                *slot = Some(value);
                true
            }
            _ => false,
        }
    }

    /// Frees a reserved key that was never filled; returns whether it was reserved.
    pub(crate) fn unreserve(&mut self, key: SlotKey) -> bool {
        match self.slab.get(key.slot as usize) {
            Some((generation, None)) if *generation == key.generation => {
                self.slab.remove(key.slot as usize);
                true
            }
            _ => false,
        }
    }

    fn insert_slot(&mut self, value: Option<T>) -> SlotKey {
        // Generations are session-wide, so a key is never reissued until 2^32 inserts have
        // passed *and* the same slot comes round again.
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let slot = self.slab.insert((generation, value));
        SlotKey {
            slot: u32::try_from(slot)
                .expect("fewer than 2^32 live slots: bounded by config limits"),
            generation,
        }
    }

    pub(crate) fn get(&self, key: SlotKey) -> Option<&T> {
        match self.slab.get(key.slot as usize) {
            Some((generation, value)) if *generation == key.generation => value.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: SlotKey) -> Option<&mut T> {
        match self.slab.get_mut(key.slot as usize) {
            Some((generation, value)) if *generation == key.generation => value.as_mut(),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: SlotKey) -> Option<T> {
        self.get(key)?;
        self.slab.remove(key.slot as usize).1
    }

    /// The number of values, reserved slots included.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Every value with its key (reserved slots are skipped).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SlotKey, &T)> {
        self.slab.iter().filter_map(|(slot, (generation, value))| {
            Some((
                SlotKey {
                    slot: slot as u32,
                    generation: *generation,
                },
                value.as_ref()?,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_find_nothing() {
        let mut slots = Slots::default();
        let a = slots.insert("a");
        assert_eq!(slots.remove(a), Some("a"));
        let b = slots.insert("b");
        assert_eq!(a.slot, b.slot, "the slot is reused");
        assert_eq!(slots.get(a), None);
        assert_eq!(slots.remove(a), None);
        assert_eq!(slots.get(b), Some(&"b"));
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn reserved_keys_find_nothing_until_filled() {
        let mut slots = Slots::default();
        let r = slots.reserve();
        let a = slots.insert("a");
        assert_ne!(r.slot, a.slot, "a reserved slot is not handed out again");
        assert_eq!(slots.get(r), None);
        assert_eq!(slots.iter().count(), 1);
        assert!(slots.fill(r, "r"));
        assert!(!slots.fill(r, "again"), "a filled slot is not reserved");
        assert_eq!(slots.get(r), Some(&"r"));
        let u = slots.reserve();
        assert!(slots.unreserve(u));
        assert!(!slots.unreserve(u));
        assert!(!slots.fill(u, "late"), "an unreserved key is stale");
        assert_eq!(slots.len(), 2);
    }
}
