//! Tenancy: label matchers every series a request reads must carry (e.g. `namespace=~"team-a|team-b"`),
//! enforced the way prom-label-proxy does it: the PromQL expression is parsed and the matchers are
//! added to every vector and matrix selector, wherever it sits (both sides of `or`, inside subqueries,
//! function arguments and aggregation parameters). Matchers are ANDed, so a selector that names the
//! label itself can only narrow the result further, never widen it.
//!
//! The rewritten expression is printed, parsed again and checked once more before it is sent: a bug in
//! printing cannot let an unconfined selector through. What cannot be confined is refused: an
//! expression that does not parse, and `info()`, which reads `target_info` series the expression
//! never names.

use promql_parser::label::{Matcher, Matchers};
use promql_parser::parser::{self, Expr, Offset, VectorSelector};
use std::time::Duration;

/// Functions that read series not named by any selector of the expression.
const UNCONFINABLE_FUNCTIONS: &[&str] = &["info"];

/// The matchers every selector is made to carry.
#[derive(Debug, Clone, Default)]
pub struct Enforced {
    matchers: Vec<Matcher>,
}

/// Why a request could not be confined; the message is for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The expression does not parse.
    Invalid(String),
    /// It parses but reaches beyond the enforced matchers.
    Escapes(String),
}

impl Enforced {
    pub fn none() -> Self {
        Enforced::default()
    }

    pub fn is_none(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Parses `namespace=~"a|b",cluster="x"`: the inside of a selector's braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expr = parser::parse(&format!("{{{text}}}"))
            .map_err(|e| format!("`{text}` is not a list of label matchers: {e}"))?;
        let Expr::VectorSelector(selector) = expr else {
            return Err(format!("`{text}` is not a list of label matchers"));
        };
        if selector.matchers.or_matchers.iter().any(|g| !g.is_empty()) {
            return Err(format!(
                "`{text}`: `or` is not allowed in enforced matchers"
            ));
        }
        if let Some(m) = selector
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__")
        {
            return Err(format!(
                "`{m}`: the metric name can't be enforced; enforce labels such as `namespace`"
            ));
        }
        Ok(Enforced {
            matchers: selector.matchers.matchers,
        })
    }

    /// The matchers as PromQL text, for messages.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.matchers.iter().map(ToString::to_string).collect();
        parts.join(",")
    }

    /// `query` with the matchers in every selector, as text for Prometheus; the expression's lookback
    /// (the longest span back in time it reads) for the range limit.
    pub fn confine_query(&self, query: &str) -> Result<(String, Duration), Refusal> {
        let mut expr = parse(query)?;
        if self.is_none() {
            // Nothing to enforce: the person's own text goes to Prometheus unchanged.
            return Ok((query.to_owned(), lookback(&expr)));
        }
        visit(&mut expr, &mut |node| self.inject(node))?;
        let text = expr.to_string();
        let reparsed = parse(&text).map_err(|_| {
            Refusal::Escapes(format!(
                "the query could not be limited to {{{}}} (its rewritten form does not parse)",
                self.describe()
            ))
        })?;
        self.verify(reparsed.clone())?;
        Ok((text, lookback(&reparsed)))
    }

    /// A `match[]` selector of series, labels or label values, confined.
    pub fn confine_selector(&self, selector: &str) -> Result<String, Refusal> {
        let expr = parse(selector)?;
        if !matches!(expr, Expr::VectorSelector(_)) {
            return Err(Refusal::Invalid(format!(
                "match[] `{selector}` is not a series selector (e.g. `up{{job=\"api\"}}`)"
            )));
        }
        if self.is_none() {
            return Ok(selector.to_owned());
        }
        Ok(self.confine_query(selector)?.0)
    }

    /// The selector used when a series, labels or label values request has no `match[]`: every series
    /// the enforced matchers allow (`__name__=~".+"` makes it valid even if they all match "").
    pub fn all_series(&self) -> String {
        format!("{{__name__=~\".+\",{}}}", self.describe())
    }

    fn inject(&self, node: &mut Expr) -> Result<(), Refusal> {
        match node {
            Expr::VectorSelector(selector) => self.add_to(selector),
            Expr::MatrixSelector(matrix) => self.add_to(&mut matrix.vs),
            Expr::Call(call) if UNCONFINABLE_FUNCTIONS.contains(&call.func.name) => {
                return Err(Refusal::Escapes(format!(
                    "`{}()` reads series the query does not name; it is not allowed while queries are limited to {{{}}}",
                    call.func.name,
                    self.describe()
                )));
            }
            _ => {}
        }
        Ok(())
    }

    fn add_to(&self, selector: &mut VectorSelector) {
        let matchers = &mut selector.matchers;
        // With `or` inside the braces every alternative is a selector of its own; the plain list is
        // empty then (the parser moves it into the first alternative).
        if matchers.or_matchers.is_empty() {
            matchers.matchers.extend(self.matchers.iter().cloned());
        } else {
            for group in &mut matchers.or_matchers {
                group.extend(self.matchers.iter().cloned());
            }
            if !matchers.matchers.is_empty() {
                let plain = std::mem::take(&mut matchers.matchers);
                for group in &mut matchers.or_matchers {
                    group.extend(plain.iter().cloned());
                }
            }
        }
    }

    fn verify(&self, mut expr: Expr) -> Result<(), Refusal> {
        let escapes = || {
            Refusal::Escapes(format!(
                "the query could not be limited to {{{}}}",
                self.describe()
            ))
        };
        visit(&mut expr, &mut |node| {
            let selector = match node {
                Expr::VectorSelector(s) => &*s,
                Expr::MatrixSelector(m) => &m.vs,
                Expr::Call(call) if UNCONFINABLE_FUNCTIONS.contains(&call.func.name) => {
                    return Err(escapes());
                }
                _ => return Ok(()),
            };
            if self.carried_by(&selector.matchers) {
                Ok(())
            } else {
                Err(escapes())
            }
        })
    }

    fn carried_by(&self, matchers: &Matchers) -> bool {
        let has_all = |list: &[Matcher]| self.matchers.iter().all(|m| list.contains(m));
        if matchers.or_matchers.is_empty() {
            has_all(&matchers.matchers)
        } else {
            matchers.matchers.is_empty() && matchers.or_matchers.iter().all(|g| has_all(g))
        }
    }
}

fn parse(query: &str) -> Result<Expr, Refusal> {
    if query.trim().is_empty() {
        return Err(Refusal::Invalid("the query is empty".to_owned()));
    }
    parser::parse(query).map_err(|e| Refusal::Invalid(format!("the query does not parse: {e}")))
}

/// Calls `f` on every node, parents first. Written out for every kind of node (no catch-all arm), so
/// a node kind added by a new parser version is a compile error here, not a selector skipped; and it
/// descends into aggregation parameters (`topk(scalar(x), y)`), which the parser's own walker skips.
fn visit(
    expr: &mut Expr,
    f: &mut impl FnMut(&mut Expr) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    f(expr)?;
    match expr {
        Expr::Aggregate(aggregate) => {
            if let Some(param) = &mut aggregate.param {
                visit(param, f)?;
            }
            visit(&mut aggregate.expr, f)
        }
        Expr::Unary(unary) => visit(&mut unary.expr, f),
        Expr::Binary(binary) => {
            visit(&mut binary.lhs, f)?;
            visit(&mut binary.rhs, f)
        }
        Expr::Paren(paren) => visit(&mut paren.expr, f),
        Expr::Subquery(subquery) => visit(&mut subquery.expr, f),
        Expr::Call(call) => {
            for arg in &mut call.args.args {
                visit(arg, f)?;
            }
            Ok(())
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => Ok(()),
        // Never produced by the parser; nothing foreign is sent on.
        Expr::Extension(_) => Err(Refusal::Invalid(
            "the query holds an expression this proxy does not know".to_owned(),
        )),
    }
}

/// How far back in time an expression reads: a matrix selector's range, a subquery's range (plus what
/// its inner expression reads) and positive offsets, the longest over the whole expression.
pub fn lookback(expr: &Expr) -> Duration {
    let offset = |o: &Option<Offset>| match o {
        Some(Offset::Pos(d)) => *d,
        _ => Duration::ZERO,
    };
    match expr {
        Expr::VectorSelector(s) => offset(&s.offset),
        Expr::MatrixSelector(m) => m.range.saturating_add(offset(&m.vs.offset)),
        Expr::Subquery(s) => s
            .range
            .saturating_add(offset(&s.offset))
            .saturating_add(lookback(&s.expr)),
        Expr::Aggregate(a) => {
            lookback(&a.expr).max(a.param.as_deref().map_or(Duration::ZERO, lookback))
        }
        Expr::Unary(u) => lookback(&u.expr),
        Expr::Binary(b) => lookback(&b.lhs).max(lookback(&b.rhs)),
        Expr::Paren(p) => lookback(&p.expr),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .map(|a| lookback(a))
            .max()
            .unwrap_or(Duration::ZERO),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> Enforced {
        Enforced::parse(r#"namespace=~"team-a|team-b""#).unwrap()
    }

    /// Every selector of `text` carries the enforced matcher.
    fn confined(text: &str) -> bool {
        let expr = parser::parse(text).unwrap();
        team().verify(expr).is_ok()
    }

    #[test]
    fn every_selector_gets_the_matcher() {
        for query in [
            "up",
            r#"up{job="api"}"#,
            r#"{__name__=~".+"}"#,
            r#"up or {__name__=~".+"}"#,
            r#"up or vector(1)"#,
            r#"sum by (namespace) (rate(http_requests_total[5m]))"#,
            r#"max_over_time(rate(x[1m])[1h:1m])"#,
            r#"label_replace(up, "namespace", "team-a", "", "")"#,
            r#"topk(scalar(sum(secret_metric)), up)"#,
            r#"quantile(scalar(other), up)"#,
            r#"count_values("v", up)"#,
            r#"up{namespace="kube-system"}"#,
            r#"-(up offset 5m) * on(instance) group_left() node_info"#,
            r#"absent(nonexistent{job="x"})"#,
            r#"{job="a" or job="b"}"#,
        ] {
            let (text, _) = team()
                .confine_query(query)
                .unwrap_or_else(|e| panic!("{query}: {e:?}"));
            assert!(confined(&text), "{query} became {text}");
        }
    }

    #[test]
    fn a_selector_naming_the_label_is_only_narrowed() {
        let (text, _) = team()
            .confine_query(r#"up{namespace="kube-system"}"#)
            .unwrap();
        assert!(text.contains(r#"namespace="kube-system""#), "{text}");
        assert!(text.contains(r#"namespace=~"team-a|team-b""#), "{text}");
    }

    #[test]
    fn what_cannot_be_confined_is_refused() {
        assert!(matches!(
            team().confine_query("info(up)"),
            Err(Refusal::Escapes(_))
        ));
        assert!(matches!(
            team().confine_query("up{"),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(team().confine_query(""), Err(Refusal::Invalid(_))));
        assert!(matches!(
            team().confine_selector("sum(up)"),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn the_verifier_catches_an_unconfined_selector() {
        assert!(!confined("up"));
        assert!(!confined(r#"up{namespace=~"team-a|team-b"} or down"#));
        assert!(!confined(
            r#"topk(scalar(secret), up{namespace=~"team-a|team-b"})"#
        ));
        assert!(!confined(
            r#"{job="a", namespace=~"team-a|team-b" or job="b"}"#
        ));
    }

    #[test]
    fn lookback_counts_ranges_subqueries_and_offsets() {
        let l = |q: &str| lookback(&parser::parse(q).unwrap());
        assert_eq!(l("up"), Duration::ZERO);
        assert_eq!(l("rate(x[5m])"), Duration::from_secs(300));
        assert_eq!(l("rate(x[5m] offset 1h)"), Duration::from_secs(3900));
        assert_eq!(
            l("max_over_time(rate(x[5m])[1d:1m])"),
            Duration::from_secs(86_400 + 300)
        );
        assert_eq!(l("x[10y]").as_secs(), 10 * 365 * 86_400);
    }

    #[test]
    fn enforced_matchers_are_checked() {
        assert!(Enforced::parse(r#"namespace="a""#).is_ok());
        assert!(Enforced::parse(r#"__name__="up""#).is_err());
        assert!(Enforced::parse("namespace").is_err());
        assert!(Enforced::parse(r#"a="1" or b="2""#).is_err());
        assert_eq!(
            Enforced::parse(r#"namespace="a""#).unwrap().all_series(),
            r#"{__name__=~".+",namespace="a"}"#
        );
    }
}
