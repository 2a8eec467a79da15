//! `Weight`: splits traffic between the routes of a group in proportion to their weights.
//!
//! ```yaml
//! - id: weight_high
//!   uri: https://weighthigh.org
//!   predicates:
//!   - Weight=group1, 8
//! - id: weight_low
//!   uri: https://weightlow.org
//!   predicates:
//!   - Weight=group1, 2
//! ```
//! Each request draws once per group; the predicate is true only on the drawn route. As in
//! SCG, the draw ignores the routes' other predicates, so the routes of a group should share
//! them. In expanded form the arguments are `group` and `weight` (SCG's `weight.group` and
//! `weight.weight` work too).

use std::sync::Arc;

use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
    WeightGroup,
};

/// Builds [`WeightPredicate`].
pub struct WeightFactory;

impl PredicateFactory for WeightFactory {
    fn name(&self) -> &'static str {
        "Weight"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["group", "weight"])
    }

    fn build(
        &self,
        args: &Args,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Box<dyn Predicate>, ArgError> {
        let group = match args.get("weight.group") {
            Some(g) => g,
            None => args.require("group")?,
        };
        let weight = match args.parse::<u32>("weight.weight", "a whole number of 0 or more")? {
            Some(w) => w,
            None => {
                args.require("weight")?;
                args.parse::<u32>("weight", "a whole number of 0 or more")?
                    .unwrap_or(0)
            }
        };
        let (group, member) = ctx.join_weight_group(group.trim(), weight);
        Ok(Box::new(WeightPredicate { group, member }))
    }
}

/// True for the route that the request's draw picked in its group.
#[derive(Debug)]
pub struct WeightPredicate {
    group: Arc<WeightGroup>,
    member: usize,
}

impl Predicate for WeightPredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        self.group.pick(request.seed) == Some(self.member)
    }
}
