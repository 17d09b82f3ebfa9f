//! The OData query options people use with Graph: `$filter` with `eq ne gt ge lt le`
//! joined by `and`, `$select`, `$top` and paging with `@odata.nextLink` (`$skiptoken`).
use serde::Serialize;
use serde_json::Value;

use super::GraphError;
use super::wire::Collection;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    path: Vec<String>,
    op: Op,
    value: Value,
    /// The value as a date-time when it is one: compared as an instant, not as text.
    date: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Default)]
pub struct Query {
    clauses: Vec<Clause>,
    select: Vec<String>,
    pub top: usize,
    /// `$skiptoken` as sent: an offset for most collections, a cursor (the last id) for users.
    skiptoken: Option<String>,
    raw_filter: Option<String>,
}

pub const MAX_TOP: usize = 999;

fn bad(msg: impl Into<String>) -> GraphError {
    GraphError::bad_request(msg)
}

fn parse_value(s: &str) -> Result<Value, GraphError> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Ok(Value::String(inner.replace("''", "'")));
    }
    match s {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(Value::from(n));
    }
    // Unquoted date-times, as Graph accepts for createdDateTime.
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(Value::String(s.to_string()));
    }
    Err(bad(format!("Invalid filter value: {s}")))
}

fn parse_clause(s: &str, allowed: &[&str]) -> Result<Clause, GraphError> {
    let mut parts = s.trim().splitn(3, ' ');
    let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!("Invalid filter clause: {s}")));
    };
    if !allowed.contains(&field) {
        return Err(bad(format!("Filtering on {field} is not supported; use one of {}", allowed.join(", "))));
    }
    let op = match op.to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        other => return Err(bad(format!("Unsupported filter operator: {other}"))),
    };
    let value = parse_value(value)?;
    let date = value.as_str().and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok());
    Ok(Clause { path: field.split('/').map(String::from).collect(), op, value, date })
}

/// Splits on ` and ` outside quotes.
fn split_and(s: &str) -> Vec<String> {
    let lower = s.to_ascii_lowercase().into_bytes();
    let bytes = s.as_bytes();
    let (mut out, mut start, mut quoted, mut i) = (Vec::new(), 0, false, 0);
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            quoted = !quoted;
        }
        if !quoted && lower[i..].starts_with(b" and ") {
            out.push(String::from_utf8_lossy(&bytes[start..i]).to_string());
            i += 5;
            start = i;
            continue;
        }
        i += 1;
    }
    out.push(String::from_utf8_lossy(&bytes[start..]).to_string());
    out
}

impl Query {
    /// Parses the request's query string; `filterable` lists the properties `$filter` may use.
    pub fn parse(raw: &str, filterable: &[&str]) -> Result<Self, GraphError> {
        let mut q = Query { top: 100, ..Default::default() };
        let mut seen = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if k.starts_with('$') && !seen.insert(k.to_string()) {
                return Err(bad(format!("Query option {k} is repeated")));
            }
            match k.as_ref() {
                "$filter" => {
                    if v.len() > 2048 {
                        return Err(bad("$filter is too long"));
                    }
                    for part in split_and(&v) {
                        q.clauses.push(parse_clause(&part, filterable)?);
                    }
                    q.raw_filter = Some(v.to_string());
                }
                "$select" => q.select = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                "$top" => {
                    q.top = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or_else(|| bad("$top must be 1 to 999"))?;
                }
                "$skiptoken" => {
                    if v.is_empty() || v.len() > 64 {
                        return Err(bad("Invalid $skiptoken"));
                    }
                    q.skiptoken = Some(v.to_string());
                }
                "$count" | "$orderby" | "$search" | "$expand" => {
                    return Err(bad(format!("{k} is not supported")));
                }
                other if other.starts_with('$') => return Err(bad(format!("Unknown query option {other}"))),
                _ => {}
            }
        }
        Ok(q)
    }

    /// The offset `$skiptoken` of an offset-paged collection.
    fn skip(&self) -> Result<usize, GraphError> {
        self.skiptoken.as_deref().map_or(Ok(0), |t| t.parse().map_err(|_| bad("Invalid $skiptoken")))
    }

    /// The cursor `$skiptoken` of a cursor-paged collection (an object id).
    pub fn cursor(&self) -> Result<Option<crate::model::UserId>, GraphError> {
        self.skiptoken
            .as_deref()
            .map(|t| crate::model::UserId::parse(t).ok_or_else(|| bad("Invalid $skiptoken")))
            .transpose()
    }

    /// Refuses a filter on one of the date-time properties `props` whose value is not a
    /// date-time (`null` only with `eq` and `ne`): a clause that could never match otherwise.
    pub fn require_dates(&self, props: &[&str]) -> Result<(), GraphError> {
        for c in &self.clauses {
            let name = c.path.join("/");
            if !props.contains(&name.as_str()) {
                continue;
            }
            let ok = c.date.is_some() || (c.value.is_null() && matches!(c.op, Op::Eq | Op::Ne));
            if !ok {
                return Err(bad(format!(
                    "Invalid filter value for {name}: expected a date-time such as 2026-01-01T00:00:00Z"
                )));
            }
        }
        Ok(())
    }

    /// Whether `$select` names `prop`.
    pub fn selects(&self, prop: &str) -> bool {
        self.select.iter().any(|s| s == prop)
    }

    /// Whether a `$filter` clause is on `prop` or one of its sub-properties (`prop/…`).
    pub fn filters_on(&self, prop: &str) -> bool {
        self.clauses.iter().any(|c| c.path.first().is_some_and(|p| p == prop))
    }

    /// One item as its JSON, projected by `$select`.
    pub fn project_one<T: Serialize>(&self, item: &T) -> Result<Value, GraphError> {
        Ok(self.project(serde_json::to_value(item).map_err(GraphError::internal)?))
    }

    /// The value of a `prop eq 'text'` clause, when the filter has one.
    pub fn eq_text(&self, prop: &str) -> Option<&str> {
        self.clauses.iter().find_map(|c| match (&c.op, c.path.as_slice(), &c.value) {
            (Op::Eq, [p], Value::String(v)) if p == prop => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether `item` (as its JSON) passes the filter.
    pub fn accepts<T: Serialize>(&self, item: &T) -> Result<bool, GraphError> {
        Ok(self.matches(&serde_json::to_value(item).map_err(GraphError::internal)?))
    }

    /// One page that the caller already filtered, with the cursor of the next page.
    pub fn page<T: Serialize>(
        &self,
        items: Vec<T>,
        next: Option<String>,
        base: &str,
        context: &str,
    ) -> Result<Collection<Value>, GraphError> {
        let mut page = Vec::with_capacity(items.len());
        for item in items {
            page.push(self.project(serde_json::to_value(item).map_err(GraphError::internal)?));
        }
        let mut body = Collection::in_context(context, page);
        if let Some(cursor) = next {
            body.next_link = Some(self.next_link(base, &cursor));
        }
        Ok(body)
    }

    fn next_link(&self, base: &str, skiptoken: &str) -> String {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("$top", &self.top.to_string());
        next.append_pair("$skiptoken", skiptoken);
        if let Some(f) = &self.raw_filter {
            next.append_pair("$filter", f);
        }
        if !self.select.is_empty() {
            next.append_pair("$select", &self.select.join(","));
        }
        format!("{base}?{}", next.finish())
    }

    fn matches(&self, item: &Value) -> bool {
        self.clauses.iter().all(|c| {
            let mut v = item;
            for p in &c.path {
                v = match v.get(p) {
                    Some(x) => x,
                    None => &Value::Null,
                };
            }
            let ord = match (c.date, v.as_str().and_then(|x| chrono::DateTime::parse_from_rfc3339(x).ok())) {
                (Some(want), Some(have)) => Some(have.cmp(&want)),
                _ => compare(v, &c.value),
            };
            match c.op {
                Op::Eq => ord == Some(std::cmp::Ordering::Equal),
                Op::Ne => ord != Some(std::cmp::Ordering::Equal),
                Op::Gt => ord == Some(std::cmp::Ordering::Greater),
                Op::Ge => matches!(ord, Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)),
                Op::Lt => ord == Some(std::cmp::Ordering::Less),
                Op::Le => matches!(ord, Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)),
            }
        })
    }

    fn project(&self, mut item: Value) -> Value {
        if self.select.is_empty() {
            return item;
        }
        if let Value::Object(map) = &mut item {
            map.retain(|k, _| k == "id" || self.select.iter().any(|s| s == k));
        }
        item
    }

    /// Filters, pages and projects `items` (as their JSON); returns the Graph collection body.
    pub fn respond<T: Serialize>(
        &self,
        items: impl IntoIterator<Item = T>,
        base: &str,
        context: &str,
    ) -> Result<Collection<Value>, GraphError> {
        let mut matching = Vec::new();
        for item in items {
            let item = serde_json::to_value(item).map_err(GraphError::internal)?;
            if self.matches(&item) {
                matching.push(item);
            }
        }
        let total = matching.len();
        let skip = self.skip()?;
        let page: Vec<Value> = matching.into_iter().skip(skip).take(self.top).map(|i| self.project(i)).collect();
        let mut body = Collection::in_context(context, page);
        if skip + self.top < total {
            body.next_link = Some(self.next_link(base, &(skip + self.top).to_string()));
        }
        Ok(body)
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => x.as_f64().zip(y.as_f64()).and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_and_pages() {
        let q = Query::parse(
            "$filter=userType eq 'Guest' and accountEnabled eq true&$select=displayName&$top=1",
            &["userType", "accountEnabled"],
        )
        .unwrap();
        let items = vec![
            serde_json::json!({"id": "1", "userType": "Guest", "accountEnabled": true, "displayName": "A"}),
            serde_json::json!({"id": "2", "userType": "Member", "accountEnabled": true, "displayName": "B"}),
            serde_json::json!({"id": "3", "userType": "guest", "accountEnabled": true, "displayName": "C"}),
        ];
        let body = q.respond(items, "http://x/graph/v1.0/users", "ctx").unwrap();
        assert_eq!(body.value, vec![serde_json::json!({"id": "1", "displayName": "A"})]);
        assert!(body.next_link.unwrap().contains("%24skiptoken=1"));
        assert!(Query::parse("$filter=password eq 'x'", &["userType"]).is_err());
        assert!(Query::parse("$filter=userType eq Guest", &["userType"]).is_err());
        assert!(Query::parse("$top=0", &[]).is_err());
        assert!(
            Query::parse("$filter=userPrincipalName eq 'a and b'", &["userPrincipalName"]).unwrap().clauses.len() == 1
        );
    }

    #[test]
    fn dates_compare_as_instants_and_null_matches_no_comparison() {
        let props = ["a/t"];
        let item = |t: Value| serde_json::json!({"a": {"t": t}});
        let q = |f: &str| Query::parse(&format!("$filter={}", f.replace('+', "%2B")), &props).unwrap();
        let at = item("2026-01-01T10:00:00Z".into());
        assert!(q("a/t le 2026-01-01T12:00:00+02:00").matches(&at), "the same instant in another offset");
        assert!(!q("a/t lt 2026-01-01T12:00:00+02:00").matches(&at));
        assert!(q("a/t lt 2026-01-01T10:00:00.5Z").matches(&at), "fractions count");
        assert!(!q("a/t le 2026-01-01T12:00:00Z").matches(&item(Value::Null)), "null is never le");
        assert!(q("a/t eq null").matches(&item(Value::Null)));
        for ok in ["a/t le 2026-01-01T00:00:00Z", "a/t eq null", "a/t ne null"] {
            assert!(q(ok).require_dates(&props).is_ok(), "{ok}");
        }
        for bad in ["a/t le 'x'", "a/t le 42", "a/t le null", "a/t gt true"] {
            assert!(q(bad).require_dates(&props).is_err(), "{bad}");
        }
    }
}
