//! The paging policy: which units (layers, output head) stay resident under a byte budget, and how
//! many streaming slots the others share.
//!
//! A decoder reads its units in the same cyclic order for every token, so LRU over `C < L` units
//! misses on every access (shared/design/paging.md). The optimal policy under a known cyclic order
//! keeps a fixed set resident ("pinned") and streams the rest through a few slots: the miss rate is
//! then `(L - pinned) / L`, the minimum. Where loads are storage reads, pinned units are spread
//! evenly through the order, so that while a pinned unit computes, the prefetch thread has a slot
//! to load the next streamed one into and storage never idles; where loads are maps of a cached
//! file, each costs a fixed amount of kernel work whatever overlaps it, and pinned units are kept
//! together, so that the streamed ones follow one another and a slot takes more of them at once
//! (super::span).

use crate::bail;
use crate::error::Result;

/// Where the pinned units sit in the access order ([`plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pins {
    /// Spread evenly, each between streamed units: for slots that read storage.
    Spread,
    /// In one run from the first unit: for mapped slots, whose loads cost kernel work per load,
    /// not storage time (SmolLM2 Q4_1 at 64 MB, warm, two Zen 4 cores: 165 tok/s median of 5
    /// against 150 spread).
    Together,
}

/// Where every unit lives under a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `pinned[u]`: unit `u` is read once and stays resident.
    pub pinned: Vec<bool>,
    /// Number of streaming slots (0 when every unit is pinned).
    pub n_slots: usize,
    /// Bytes of each slot: the largest streamed unit.
    pub slot_bytes: usize,
    /// Whether the pager holds the pinned units in host memory (true from [`plan`]). A GPU model
    /// clears it: its device keeps the pinned units, which the pager then reads only when asked,
    /// once each, into memory the asker frees (host memory holds the slots only).
    pub hold_pinned: bool,
}

impl Plan {
    /// Bytes the plan keeps resident: pinned units (`pin_bytes` each) plus slots.
    pub fn resident_bytes(&self, pin_bytes: &[usize]) -> usize {
        let pinned: usize = pin_bytes
            .iter()
            .zip(&self.pinned)
            .filter(|(_, &p)| p)
            .map(|(b, _)| b)
            .sum();
        pinned + self.n_slots * self.slot_bytes
    }

    /// Number of pinned units.
    pub fn n_pinned(&self) -> usize {
        self.pinned.iter().filter(|&&p| p).count()
    }
}

/// Plans units (in access order) that cost `pin_bytes[u]` pinned and `slot_bytes[u]` (at least
/// as much: a mapped slot may map more than the unit) in a slot, under `budget` bytes with up to
/// `max_slots` streaming slots (two overlap one computing unit with one loading; more look further
/// ahead), the pinned units placed as `pins` says.
///
/// Fails with `InvalidArgument` when the budget cannot hold even one slot of the largest unit.
pub fn plan(
    pin_bytes: &[usize],
    slot_bytes: &[usize],
    budget: usize,
    max_slots: usize,
    pins: Pins,
) -> Result<Plan> {
    let n = pin_bytes.len();
    debug_assert_eq!(slot_bytes.len(), n);
    let total: usize = pin_bytes.iter().sum();
    if total <= budget {
        return Ok(Plan {
            pinned: vec![true; n],
            n_slots: 0,
            slot_bytes: 0,
            hold_pinned: true,
        });
    }
    let largest = slot_bytes.iter().copied().max().unwrap_or(0);
    if budget < largest {
        bail!(
            InvalidArgument,
            "a memory budget of {budget} bytes cannot hold the largest layer ({largest} bytes); \
             the smallest budget for this model is {largest} bytes (more is faster)"
        );
    }
    // Slots first (without them nothing streams), as many as fit up to max_slots, then pins.
    let n_slots = (budget / largest).clamp(1, max_slots.max(1));
    let mut left = budget - n_slots * largest;
    let mut pinned = vec![false; n];
    // Evenly spread candidates: the k-th of n_pin targets sits at (k + 0.5) * n / n_pin. The number
    // that fits is not known before sizes are summed, so try decreasing counts.
    let max_pin = n.min(left / pin_bytes.iter().min().unwrap_or(&1).max(&1));
    for n_pin in (1..=max_pin).rev() {
        let picks: Vec<usize> = match pins {
            Pins::Spread => (0..n_pin).map(|k| (2 * k + 1) * n / (2 * n_pin)).collect(),
            Pins::Together => (0..n_pin).collect(),
        };
        let bytes: usize = picks.iter().map(|&u| pin_bytes[u]).sum();
        if bytes <= left {
            for u in picks {
                pinned[u] = true;
            }
            left -= bytes;
            break;
        }
    }
    // Units of uneven size may leave room for more: pin greedily in order.
    for u in 0..n {
        if !pinned[u] && pin_bytes[u] <= left {
            pinned[u] = true;
            left -= pin_bytes[u];
        }
    }
    if pinned.iter().all(|&p| p) {
        // Everything fit once slots were paid for (only when total <= budget, handled above).
        unreachable!("total > budget but every unit pinned");
    }
    let slot_bytes = slot_bytes
        .iter()
        .zip(&pinned)
        .filter(|(_, &p)| !p)
        .map(|(&b, _)| b)
        .max()
        .unwrap_or(0);
    Ok(Plan {
        pinned,
        n_slots,
        slot_bytes,
        hold_pinned: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_fits() {
        let p = plan(&[10, 10, 10], &[10, 10, 10], 30, 2, Pins::Spread).unwrap();
        assert_eq!(p.n_pinned(), 3);
        assert_eq!(p.n_slots, 0);
    }

    #[test]
    fn spreads_pins_and_stays_in_budget() {
        let units = vec![100; 30];
        for budget in [100, 150, 450, 1200, 2100, 2999] {
            let p = plan(&units, &units, budget, 2, Pins::Spread).unwrap();
            assert!(p.resident_bytes(&units) <= budget, "{budget}: {p:?}");
            assert!(p.n_slots >= 1);
        }
        let p = plan(&units, &units, 1200, 2, Pins::Spread).unwrap();
        assert_eq!(p.n_pinned(), 10);
        // Evenly spread: no two pinned units adjacent when fewer than half are pinned.
        let idx: Vec<usize> = (0..30).filter(|&u| p.pinned[u]).collect();
        assert!(idx.windows(2).all(|w| w[1] - w[0] == 3), "{idx:?}");
    }

    #[test]
    fn pins_together_form_one_run() {
        let units = vec![100; 30];
        let p = plan(&units, &units, 1200, 2, Pins::Together).unwrap();
        assert!(p.resident_bytes(&units) <= 1200, "{p:?}");
        let idx: Vec<usize> = (0..30).filter(|&u| p.pinned[u]).collect();
        assert_eq!(idx, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn budget_below_one_layer_is_an_error() {
        let e = plan(&[100, 200], &[100, 200], 199, 2, Pins::Spread).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
    }

    #[test]
    fn uneven_units_fill_the_remainder() {
        // A large output head and small layers.
        let units = [10, 10, 10, 10, 50];
        let p = plan(&units, &units, 75, 2, Pins::Spread).unwrap();
        assert!(p.resident_bytes(&units) <= 75, "{p:?}");
        assert!(!p.pinned[4]);
        assert_eq!(p.slot_bytes, 50);
    }

    #[test]
    fn slots_cost_what_a_slot_takes() {
        // Units of 100 that a slot maps as 300 (widened to whole blocks): two slots of 300 leave
        // room for 4 pins, where slots of 100 would have left room for 8.
        let pin = vec![100; 30];
        let slot = vec![300; 30];
        let p = plan(&pin, &slot, 1000, 2, Pins::Spread).unwrap();
        assert_eq!(
            (p.n_slots, p.slot_bytes, p.n_pinned()),
            (2, 300, 4),
            "{p:?}"
        );
        assert!(p.resident_bytes(&pin) <= 1000);
        // The largest slot is what a budget must hold at least.
        assert!(plan(&pin, &slot, 299, 2, Pins::Spread).is_err());
    }
}
