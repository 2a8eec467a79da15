use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// What a factory may know about the route it builds for.
pub struct BuildContext<'a> {
    route_id: &'a str,
    weights: &'a mut WeightGroups,
}

impl<'a> BuildContext<'a> {
    /// A context for building the predicates of route `route_id`.
    pub fn new(route_id: &'a str, weights: &'a mut WeightGroups) -> Self {
        Self { route_id, weights }
    }

    /// The id of the route being built.
    pub fn route_id(&self) -> &str {
        self.route_id
    }

    /// Joins the route to weight group `group` with `weight`; returns the group and the
    /// route's position in it.
    pub fn join_weight_group(&mut self, group: &str, weight: u32) -> (Arc<WeightGroup>, usize) {
        self.weights.join(group, weight)
    }
}

/// One group of routes that share traffic by weight (SCG's `Weight` predicate).
#[derive(Debug)]
pub struct WeightGroup {
    name: String,
    salt: u64,
    /// Cumulative weights of the members, set once every route is compiled.
    cumulative: OnceLock<Vec<u64>>,
}

impl WeightGroup {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which member the request with random `seed` goes to; `None` when every weight is 0.
    pub fn pick(&self, seed: u64) -> Option<usize> {
        let cumulative = self.cumulative.get()?;
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        // Mix the seed with the group so that groups draw independently.
        let mut x = seed ^ self.salt;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let point = ((u128::from(x) * u128::from(total)) >> 64) as u64;
        cumulative.iter().position(|c| point < *c)
    }
}

/// The weight groups of one config being compiled.
#[derive(Debug, Default)]
pub struct WeightGroups {
    groups: HashMap<String, (Arc<WeightGroup>, Vec<u32>)>,
}

impl WeightGroups {
    fn join(&mut self, group: &str, weight: u32) -> (Arc<WeightGroup>, usize) {
        let salt = self.groups.len() as u64 + 1;
        let (handle, members) = self.groups.entry(group.to_string()).or_insert_with(|| {
            let handle = WeightGroup {
                name: group.to_string(),
                salt: salt.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                cumulative: OnceLock::new(),
            };
            (Arc::new(handle), Vec::new())
        });
        members.push(weight);
        (handle.clone(), members.len() - 1)
    }

    /// Fixes every group's members once all routes are built.
    pub fn finish(self) {
        for (handle, members) in self.groups.into_values() {
            let mut sum = 0u64;
            let cumulative = members
                .iter()
                .map(|w| {
                    sum += u64::from(*w);
                    sum
                })
                .collect();
            let _ = handle.cumulative.set(cumulative);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_in_proportion_to_weights() {
        let mut groups = WeightGroups::default();
        let (g, a) = groups.join("g", 8);
        let (_, b) = groups.join("g", 2);
        groups.finish();
        let mut counts = [0usize; 2];
        for seed in 0..100_000u64 {
            counts[g.pick(seed.wrapping_mul(0x2545_f491_4f6c_dd1d)).unwrap()] += 1;
        }
        assert_eq!((a, b), (0, 1));
        assert!((79_000..81_000).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn all_zero_weights_pick_nothing() {
        let mut groups = WeightGroups::default();
        let (g, _) = groups.join("g", 0);
        groups.finish();
        assert_eq!(g.pick(7), None);
    }
}
