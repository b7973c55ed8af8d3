//! A slab whose keys carry a generation, so stale keys are detected (STYLE.md rule 5).

use slab::Slab;

/// A key into [`Slots`]: slot index and the generation the slot had when the value was inserted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct SlotKey {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// Values in reusable slots; a key from an earlier occupant of a slot finds nothing.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slab: Slab<(u32, T)>,
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
            Some((generation, value)) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: SlotKey) -> Option<&mut T> {
        match self.slab.get_mut(key.slot as usize) {
            Some((generation, value)) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: SlotKey) -> Option<T> {
        self.get(key)?;
        Some(self.slab.remove(key.slot as usize).1)
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SlotKey, &T)> {
        self.slab.iter().map(|(slot, (generation, value))| {
            (
                SlotKey {
                    slot: slot as u32,
                    generation: *generation,
                },
                value,
            )
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
}
