use std::borrow::Cow;

use crate::Captures;

/// A value with `{var}` placeholders filled from the variables captured by the route's
/// predicates (SCG's URI-template expansion), parsed once when the config is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

impl Template {
    /// Parses `text`; every `{name}` must be one of `known` variables.
    pub fn parse(text: &str, known: &[String]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| format!("`{{` without a matching `}}` in `{text}`"))?;
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let name = &rest[open + 1..close];
            if !known.iter().any(|k| k == name) {
                let available = if known.is_empty() {
                    "this route's predicates capture no variables".to_string()
                } else {
                    format!("this route's predicates capture: {}", known.join(", "))
                };
                return Err(format!(
                    "`{{{name}}}` is not a captured variable; {available}"
                ));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has any variable.
    pub fn has_vars(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// The literal text pieces, for validating them when the config is compiled.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Literal(l) => Some(l.as_str()),
            Part::Var(_) => None,
        })
    }

    /// Fills in the variables; borrows when there are none.
    pub fn expand(&self, vars: &Captures) -> Cow<'_, str> {
        if !self.has_vars() {
            return Cow::Borrowed(&self.text);
        }
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Var(v) => out.push_str(vars.get(v).unwrap_or("")),
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn expands_known_variables_and_rejects_unknown_ones() {
        let known = vec!["segment".to_string()];
        let t = Template::parse("/x/{segment}/y", &known).unwrap();
        let mut vars = Captures::default();
        vars.insert(&Arc::from("segment"), "abc");
        assert_eq!(t.expand(&vars), "/x/abc/y");
        assert!(matches!(
            Template::parse("plain", &known).unwrap().expand(&vars),
            Cow::Borrowed("plain")
        ));
        let e = Template::parse("{nope}", &known).unwrap_err();
        assert!(e.contains("capture: segment"), "{e}");
        assert!(Template::parse("{open", &known).is_err());
    }
}
