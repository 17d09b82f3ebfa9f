//! Conditional access: Device filter rules.
use std::fmt;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rule {
    Is { attr: Attr, equal: bool },
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attr {
    Compliant(bool),
    Managed(bool),
    TrustType(&'static str),
}

impl Rule {
    pub(super) fn eval(&self, d: &DeviceView) -> bool {
        match self {
            Rule::Is { attr, equal } => attr.holds(d) == *equal,
            Rule::And(rules) => rules.iter().all(|r| r.eval(d)),
            Rule::Or(rules) => rules.iter().any(|r| r.eval(d)),
        }
    }
}

impl Attr {
    fn holds(self, d: &DeviceView) -> bool {
        match self {
            Attr::Compliant(v) => d.compliant == v,
            Attr::Managed(v) => d.managed == v,
            Attr::TrustType(v) => d.trust_type.is_some_and(|t| t.eq_ignore_ascii_case(v)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Open,
    Close,
    Word(String),
    Quoted(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Open => f.write_str("("),
            Tok::Close => f.write_str(")"),
            Tok::Word(w) => f.write_str(w),
            Tok::Quoted(q) => write!(f, "\"{q}\""),
        }
    }
}

pub(super) fn lex(rule: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = rule.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            toks.push(if c == '(' { Tok::Open } else { Tok::Close });
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(ch) => text.push(ch),
                    None => return Err("unterminated quoted value".into()),
                }
            }
            toks.push(Tok::Quoted(text));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || matches!(ch, '(' | ')' | '"' | '\'') {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            toks.push(Tok::Word(word));
        }
    }
    Ok(toks)
}

/// `-and` binds tighter than `-or`; both associate left to right; parentheses group.
pub(super) fn parse_rule(rule: &str) -> Result<Rule, String> {
    if rule.len() > MAX_RULE_LEN {
        return Err(format!("rule is longer than {MAX_RULE_LEN} characters"));
    }
    let toks = lex(rule)?;
    if toks.is_empty() {
        return Err("rule is empty".into());
    }
    let mut parser = RuleParser { toks, pos: 0 };
    let parsed = parser.or(0)?;
    match parser.toks.get(parser.pos) {
        None => Ok(parsed),
        Some(t) => Err(format!("unexpected {t}")),
    }
}

pub(super) struct RuleParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl RuleParser {
    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn eat(&mut self, op: &str) -> bool {
        let hit = matches!(self.toks.get(self.pos), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(op));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn or(&mut self, depth: usize) -> Result<Rule, String> {
        let mut rules = vec![self.and(depth)?];
        while self.eat("-or") {
            rules.push(self.and(depth)?);
        }
        Ok(Rule::Or(rules))
    }

    fn and(&mut self, depth: usize) -> Result<Rule, String> {
        let mut rules = vec![self.term(depth)?];
        while self.eat("-and") {
            rules.push(self.term(depth)?);
        }
        Ok(Rule::And(rules))
    }

    fn term(&mut self, depth: usize) -> Result<Rule, String> {
        match self.next() {
            Some(Tok::Open) => {
                if depth >= MAX_RULE_DEPTH {
                    return Err(format!("parentheses nested deeper than {MAX_RULE_DEPTH}"));
                }
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Word(property)) if !property.starts_with('-') => {
                let equal = match self.next() {
                    Some(Tok::Word(op)) if op.eq_ignore_ascii_case("-eq") => true,
                    Some(Tok::Word(op)) if op.eq_ignore_ascii_case("-ne") => false,
                    Some(t) => return Err(format!("unsupported operator {t} (use -eq or -ne)")),
                    None => return Err(format!("expected -eq or -ne after {property}")),
                };
                let value = match self.next() {
                    Some(Tok::Word(v) | Tok::Quoted(v)) if !v.starts_with('-') => v,
                    _ => return Err(format!("expected a value after {property}")),
                };
                Ok(Rule::Is { attr: attr(&property, &value)?, equal })
            }
            Some(t) => Err(format!("unexpected {t}")),
            None => Err("unexpected end of rule".into()),
        }
    }
}

pub(super) fn attr(property: &str, value: &str) -> Result<Attr, String> {
    let boolean = || {
        if value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(format!("{property} compares with True or False, not {value:?}"))
        }
    };
    match property.to_ascii_lowercase().as_str() {
        "device.iscompliant" => boolean().map(Attr::Compliant),
        "device.ismanaged" => boolean().map(Attr::Managed),
        "device.trusttype" => TRUST_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(value))
            .map(|t| Attr::TrustType(t))
            .ok_or_else(|| format!("device.trustType is AzureAD, ServerAD or Workplace, not {value:?}")),
        _ => Err(format!("unsupported property {property} (device.isCompliant, device.isManaged, device.trustType)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rule, compliant, managed, trust type) → Some(result) or None for a parse error.
    #[test]
    fn device_rule_language() {
        type Case<'a> = (&'a str, bool, bool, Option<&'a str>, Option<bool>);
        let deep = format!("{}device.isCompliant -eq True{}", "(".repeat(17), ")".repeat(17));
        let ok_deep = format!("{}device.isCompliant -eq True{}", "(".repeat(16), ")".repeat(16));
        let long = format!("device.isCompliant -eq True{}", " ".repeat(MAX_RULE_LEN));
        let cases: Vec<Case> = vec![
            ("device.isCompliant -eq True", true, false, None, Some(true)),
            ("device.isCompliant -eq True", false, false, None, Some(false)),
            ("DEVICE.ISCOMPLIANT -EQ true", true, false, None, Some(true)),
            ("device.isCompliant -eq \"True\"", true, false, None, Some(true)),
            ("device.isCompliant -ne True", false, false, None, Some(true)),
            ("device.isManaged -eq False", false, false, None, Some(true)),
            ("device.isManaged -eq True", false, true, None, Some(true)),
            ("device.trustType -eq \"AzureAD\"", false, false, Some("AzureAD"), Some(true)),
            ("device.trustType -eq azuread", false, false, Some("AzureAD"), Some(true)),
            ("device.trustType -eq 'Workplace'", false, false, Some("AzureAD"), Some(false)),
            ("device.trustType -eq ServerAD", false, false, None, Some(false)),
            ("device.trustType -ne ServerAD", false, false, None, Some(true)),
            // -and binds tighter: T -or (F -and F) = T; left-to-right would give F.
            (
                "device.isCompliant -eq True -or device.isManaged -eq True -and device.trustType -eq AzureAD",
                true,
                false,
                None,
                Some(true),
            ),
            // (F -and T) -or T = T; right-to-left grouping F -and (T -or T) would give F.
            (
                "device.isCompliant -eq True -and device.isManaged -eq False -or device.trustType -eq Workplace",
                false,
                false,
                Some("Workplace"),
                Some(true),
            ),
            ("device.isCompliant -eq True -and device.isManaged -eq True", true, false, None, Some(false)),
            ("device.isCompliant -eq True -and device.isManaged -eq True", true, true, None, Some(true)),
            ("device.isCompliant -eq True -or device.isManaged -eq True", false, true, None, Some(true)),
            (
                "device.isCompliant -eq True -or device.isManaged -eq True -or device.trustType -eq AzureAD",
                false,
                false,
                Some("AzureAD"),
                Some(true),
            ),
            (
                "device.isCompliant -eq True -or device.isManaged -eq True -or device.trustType -eq AzureAD",
                false,
                false,
                None,
                Some(false),
            ),
            // Parentheses override precedence: (T -or F) -and F = F.
            (
                "(device.isCompliant -eq True -or device.isManaged -eq True) -and device.trustType -eq AzureAD",
                true,
                false,
                None,
                Some(false),
            ),
            ("(device.isCompliant -eq True)", true, false, None, Some(true)),
            (ok_deep.as_str(), true, false, None, Some(true)),
            ("", false, false, None, None),
            ("   ", false, false, None, None),
            ("device.isCompliant", false, false, None, None),
            ("device.isCompliant -eq", false, false, None, None),
            ("-eq True", false, false, None, None),
            ("device.isCompliant -eq Maybe", false, false, None, None),
            ("device.isCompliant -gt True", false, false, None, None),
            ("device.trustType -eq Cloud", false, false, None, None),
            ("device.operatingSystem -eq Windows", false, false, None, None),
            ("device.isCompliant -eq True -and", false, false, None, None),
            ("device.isCompliant -eq True -or -and device.isManaged -eq True", false, false, None, None),
            ("device.isCompliant -eq True device.isManaged -eq True", false, false, None, None),
            ("(device.isCompliant -eq True", false, false, None, None),
            ("device.isCompliant -eq True)", false, false, None, None),
            ("()", false, false, None, None),
            ("device.trustType -eq \"AzureAD", false, false, None, None),
            ("\"device.isCompliant\" -eq True", false, false, None, None),
            (deep.as_str(), true, false, None, None),
            (long.as_str(), true, false, None, None),
        ];
        for (rule, compliant, managed, trust_type, expected) in cases {
            let view = DeviceView { compliant, managed, trust_type };
            let got = parse_rule(rule).ok().map(|r| r.eval(&view));
            assert_eq!(got, expected, "rule: {rule:?}");
        }
    }
}
