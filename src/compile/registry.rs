use std::collections::BTreeMap;
use std::sync::Arc;

use weir_filters::FilterFactory;
use weir_predicates::PredicateFactory;

/// The predicate and filter factories a config may name, by YAML name.
#[derive(Clone)]
pub struct Registry {
    predicates: BTreeMap<&'static str, Arc<dyn PredicateFactory>>,
    filters: BTreeMap<&'static str, Arc<dyn FilterFactory>>,
}

impl Default for Registry {
    /// The built-in factories.
    fn default() -> Self {
        let mut registry = Self::empty();
        for factory in weir_predicates::builtins() {
            registry
                .predicates
                .insert(factory.name(), Arc::from(factory));
        }
        for factory in weir_filters::builtins() {
            registry.filters.insert(factory.name(), Arc::from(factory));
        }
        registry
    }
}

impl Registry {
    /// A registry with no factories at all.
    pub fn empty() -> Self {
        Self {
            predicates: BTreeMap::new(),
            filters: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a predicate factory under its name.
    pub fn add_predicate(&mut self, factory: impl PredicateFactory) {
        self.predicates.insert(factory.name(), Arc::new(factory));
    }

    /// Adds (or replaces) a filter factory under its name.
    pub fn add_filter(&mut self, factory: impl FilterFactory) {
        self.filters.insert(factory.name(), Arc::new(factory));
    }

    /// The predicate factory called `name`, or a message naming the closest one.
    pub fn predicate(&self, name: &str) -> Result<&Arc<dyn PredicateFactory>, String> {
        self.predicates
            .get(name)
            .ok_or_else(|| unknown("predicate", name, self.predicates.keys().copied()))
    }

    /// The filter factory called `name`, or a message naming the closest one.
    pub fn filter(&self, name: &str) -> Result<&Arc<dyn FilterFactory>, String> {
        self.filters
            .get(name)
            .ok_or_else(|| unknown("filter", name, self.filters.keys().copied()))
    }

    /// The names of every predicate factory.
    pub fn predicate_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.predicates.keys().copied()
    }

    /// The names of every filter factory.
    pub fn filter_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.filters.keys().copied()
    }
}

fn unknown<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    match weir_predicates::closest(name, known.clone()) {
        Some(close) => format!("unknown {kind} `{name}`; did you mean `{close}`?"),
        None => format!(
            "unknown {kind} `{name}`; known {kind}s: {}",
            known.collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name() {
        let r = Registry::default();
        assert!(r.predicate("Path").is_ok());
        assert_eq!(
            r.predicate("Pth").err().unwrap(),
            "unknown predicate `Pth`; did you mean `Path`?"
        );
        assert!(r
            .filter("RewritePth")
            .err()
            .unwrap()
            .contains("`RewritePath`"));
        assert!(r
            .filter("Zzzzzzzzz")
            .err()
            .unwrap()
            .contains("known filters: "));
    }
}
