//! Choosing the hook for a request line and calling it.
//!
//! All patterns of all plugins, in dispatch order (config order, then each
//! plugin's own order), go into one multi-pattern regex: the engine behind
//! `regex::RegexSet`, used directly. Every pattern is anchored to the whole
//! line, so all matches span the line, and leftmost-first semantics report
//! the lowest-numbered matching pattern: the winning hook comes out of one
//! forward pass over the line, however many hooks are loaded, without the
//! allocation and the all-patterns search of `RegexSet::matches`. Only the
//! winning hook's own regex then runs, and only if the handler needs
//! capture groups.
//!
//! Most commands are plain words (`HELLO`, `TIME`), so lines that equal a
//! literal pattern are looked up before any regex runs: the table keeps,
//! for each such literal, the route the regex gives that very line.

use std::collections::HashMap;
use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr, RString};
use plugin_api::abi::{GroupName, HookFailure, Outcome, RequestFfi, Span, StatePtr};
use regex_automata::meta;
use regex_automata::{Input, MatchKind};
use regex_syntax::hir::{Hir, HirKind, Look};

use crate::pattern::explain_build_error;
use crate::placement::Placement;
use crate::plugins::{LoadedPlugin, escape};
use crate::session::ClientInfo;
use crate::stats::HookStats;

/// The largest automaton the combined patterns may compile to. Each pattern
/// alone is held to the `regex` crate's usual limit when its plugin loads;
/// together, a thousand of them legitimately need more.
const TABLE_SIZE_LIMIT: usize = 256 << 20;

/// Why the dispatch table could not be built.
#[derive(Debug, thiserror::Error)]
#[error(
    "the hooks of plugin `{}` make the dispatch table too large: {}",
    escape::text(plugin),
    explain_build_error(error)
)]
pub struct TableError {
    /// The plugin whose hooks, added to those before it, pass the limit.
    pub plugin: String,
    /// Part of the message, not a `source`, so that it is printed once.
    pub error: Box<meta::BuildError>,
}

/// The table of hooks the host serves; immutable once built, shared by
/// every connection behind an `Arc`.
pub struct Dispatcher {
    /// Shared with the tables before and after a reload that kept them.
    plugins: Vec<Arc<LoadedPlugin>>,
    routes: Vec<Route>,
    /// Every route's pattern, in dispatch order.
    all: meta::Regex,
    /// The routes whose patterns ask for control characters, and their set:
    /// a line holding control characters is offered to these alone.
    control_routes: Vec<usize>,
    control: meta::Regex,
    /// Lines that equal a literal pattern, and where they go.
    literals: Literals,
}

/// One hook in the dispatch table.
pub struct Route {
    pub plugin: usize,
    pub hook: usize,
    /// The hook's own anchored pattern, run for its capture groups.
    captures: meta::Regex,
    /// Capture groups including group 0.
    groups: usize,
    /// The pattern's named groups, as plugins look them up.
    names: GroupNames,
    /// Where its calls run: learned, unless declared blocking.
    pub placement: Placement,
    /// Why the hook no longer runs, if it crashed the server too often.
    pub disabled: Option<String>,
}

/// Where a line goes.
pub enum Target {
    /// The route with this index.
    Hook(usize),
    /// No hook matches.
    NotFound,
    /// The line holds control characters and no hook asks for them.
    ControlCharacters,
}

/// A hook's failure, ready to report.
pub enum CallError {
    /// The handler's own error message, for the client.
    Failed(String),
    /// The handler panicked: plugin name and panic message.
    Panicked { plugin: String, message: String },
}

impl Dispatcher {
    /// Builds the table from plugins loaded in config order.
    pub fn new(plugins: Vec<LoadedPlugin>) -> Result<Dispatcher, TableError> {
        Dispatcher::shared(plugins.into_iter().map(Arc::new).collect())
    }

    /// Builds the table from plugins that other tables may hold too: a
    /// reload keeps the instances of plugins that did not change.
    pub fn shared(plugins: Vec<Arc<LoadedPlugin>>) -> Result<Dispatcher, TableError> {
        let mut routes = Vec::new();
        let mut patterns: Vec<&Hir> = Vec::new();
        let mut control_routes = Vec::new();
        let mut control_patterns: Vec<&Hir> = Vec::new();
        // Where each plugin's patterns end, to name the culprit of a failure.
        let mut ends = Vec::with_capacity(plugins.len());
        for (p, plugin) in plugins.iter().enumerate() {
            for (h, hook) in plugin.hooks.iter().enumerate() {
                if asks_for_control_characters(&hook.pattern.source) {
                    control_routes.push(routes.len());
                    control_patterns.push(&hook.pattern.anchored);
                }
                patterns.push(&hook.pattern.anchored);
                routes.push(Route {
                    plugin: p,
                    hook: h,
                    captures: hook.pattern.captures.clone(),
                    groups: hook.pattern.groups(),
                    names: GroupNames::of(&hook.pattern.captures),
                    placement: Placement::new(hook.blocking),
                    disabled: None,
                });
            }
            ends.push(patterns.len());
        }
        let culprit = |source: Box<meta::BuildError>| {
            // Rebuild with one more plugin's hooks at a time: the first
            // prefix that fails names the plugin to blame.
            let index = ends
                .iter()
                .position(|&end| first_match_regex(&patterns[..end]).is_err())
                .unwrap_or(plugins.len().saturating_sub(1));
            TableError {
                plugin: plugins
                    .get(index)
                    .map_or_else(String::new, |p| p.name.clone()),
                error: source,
            }
        };
        let all = first_match_regex(&patterns).map_err(culprit)?;
        let control = first_match_regex(&control_patterns).map_err(culprit)?;
        drop(patterns);
        drop(control_patterns);
        let literals = Literals::new(
            plugins
                .iter()
                .flat_map(|p| &p.hooks)
                .filter_map(|h| literal(&h.pattern.anchored)),
            &all,
        );
        Ok(Dispatcher {
            all,
            control,
            literals,
            plugins,
            routes,
            control_routes,
        })
    }

    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub fn route(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    /// The figures of route `index`, kept by its plugin instance.
    pub fn stats(&self, index: usize) -> &HookStats {
        let route = &self.routes[index];
        &self.plugins[route.plugin].stats.hooks[route.hook]
    }

    /// One line per route, in route order: plugin name, hook number and
    /// pattern, separated by tabs, as the supervisor reads them.
    pub fn names_table(&self) -> String {
        let mut table = String::new();
        for route in &self.routes {
            let plugin = &self.plugins[route.plugin];
            let pattern = escape::text(&plugin.hooks[route.hook].pattern.source).to_string();
            table.push_str(&format!(
                "{}\t{}\t{}\n",
                plugin.name.replace(['\t', '\n'], " "),
                route.hook + 1,
                pattern.replace(['\t', '\n'], " ")
            ));
        }
        table
    }

    /// Stops serving hook number `hook` (from 1) of plugin `plugin`;
    /// its requests are answered with `reason`. False if there is no such hook.
    pub fn disable(&mut self, plugin: &str, hook: usize, reason: &str) -> bool {
        let mut found = false;
        for route in &mut self.routes {
            if self.plugins[route.plugin].name == plugin && route.hook + 1 == hook {
                route.disabled = Some(reason.to_owned());
                found = true;
            }
        }
        found
    }

    /// The plugin's name and the hook, as logs name them: ``2 `SEGV` ``.
    pub fn names(&self, index: usize) -> (&str, String) {
        let route = &self.routes[index];
        let plugin = &self.plugins[route.plugin];
        let hook = format!(
            "{} `{}`",
            route.hook + 1,
            escape::text(&plugin.hooks[route.hook].pattern.source)
        );
        (&plugin.name, hook)
    }

    /// The first hook whose pattern matches the whole of `line`.
    pub fn target(&self, line: &str) -> Target {
        if let Some(route) = self.literals.get(line) {
            return Target::Hook(route);
        }
        if has_control_characters(line) {
            return match first_match(&self.control, line) {
                Some(i) => Target::Hook(self.control_routes[i]),
                None => Target::ControlCharacters,
            };
        }
        match first_match(&self.all, line) {
            Some(i) => Target::Hook(i),
            None => Target::NotFound,
        }
    }

    /// The first hook after route `after` whose pattern matches the whole
    /// of `line`: where a line goes when a hook declined it. Each later
    /// pattern runs on its own, which only lines that were declined pay.
    pub fn target_after(&self, after: usize, line: &str) -> Target {
        let control = has_control_characters(line);
        let next = (after + 1..self.routes.len()).find(|&i| {
            (!control || self.control_routes.contains(&i))
                && self.routes[i].captures.is_match(Input::new(line))
        });
        match next {
            Some(i) => Target::Hook(i),
            None if control => Target::ControlCharacters,
            None => Target::NotFound,
        }
    }

    /// Calls route `index` with `line` and the connection's `state` in the
    /// route's plugin, appending its reply to `out`. `spans` is scratch
    /// space for the capture groups, reused across calls.
    pub fn call(
        &self,
        index: usize,
        line: &str,
        spans: &mut Vec<Span>,
        client: &ClientInfo,
        state: &mut StatePtr,
        out: &mut RString,
    ) -> Result<Outcome, CallError> {
        let result = self.call_raw(index, line, spans, client, state, out);
        self.outcome(index, result)
    }

    /// [`Dispatcher::call`], its result as the plugin left it, to be read
    /// in place: copied whole right after the plugin wrote it, it would be
    /// read back with wider loads than it was written with, which wait for
    /// the writes to finish. [`Dispatcher::outcome`] makes it a `Result`.
    pub fn call_raw(
        &self,
        index: usize,
        line: &str,
        spans: &mut Vec<Span>,
        client: &ClientInfo,
        state: &mut StatePtr,
        out: &mut RString,
    ) -> RResult<Outcome, HookFailure> {
        let route = &self.routes[index];
        spans.clear();
        if route.groups <= 1 {
            spans.push(Span {
                start: 0,
                end: line.len(),
            });
        } else {
            let mut captures = route.captures.create_captures();
            route.captures.captures(Input::new(line), &mut captures);
            spans.extend((0..route.groups).map(|i| match captures.get_group(i) {
                Some(m) => Span {
                    start: m.start,
                    end: m.end,
                },
                None => Span::NONE,
            }));
        }
        let request = RequestFfi {
            line: RStr::from_str(line),
            groups: spans.as_slice().into(),
            names: route.names.as_slice().into(),
            // Made here, in place, from fields written long ago.
            client: client.ffi(),
        };
        let plugin = &self.plugins[route.plugin];
        plugin.stats.hooks[route.hook].calls.add();
        plugin.object.call(route.hook, &request, state, out)
    }

    /// A hook's result, from a call or from a pending reply, as the host
    /// reports and counts it.
    pub fn outcome(
        &self,
        index: usize,
        result: RResult<Outcome, HookFailure>,
    ) -> Result<Outcome, CallError> {
        let plugin = &self.plugins[self.routes[index].plugin];
        let stats = &plugin.stats.hooks[self.routes[index].hook];
        match result {
            RResult::ROk(outcome) => Ok(outcome),
            RResult::RErr(HookFailure::Error(message)) => {
                HookStats::bump(&stats.errors);
                Err(CallError::Failed(message.into_string()))
            }
            RResult::RErr(HookFailure::Panic(message)) => {
                HookStats::bump(&stats.panics);
                Err(CallError::Panicked {
                    plugin: plugin.name.clone(),
                    message: message.into_string(),
                })
            }
        }
    }
}

/// The named capture groups of one pattern, in the form requests carry
/// them: the names live as long as the table.
struct GroupNames {
    /// Owns the text `table` points into; boxed, so it does not move.
    _names: Vec<Box<str>>,
    table: Vec<GroupName<'static>>,
}

impl GroupNames {
    fn of(regex: &meta::Regex) -> GroupNames {
        let names: Vec<(Box<str>, usize)> = regex
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (Box::from(n), i)))
            .collect();
        let table = names
            .iter()
            .map(|(name, index)| {
                // SAFETY: the text is owned by `_names` beside this table,
                // on the heap, and neither is changed or dropped before the
                // other; `as_slice` hands it out for no longer than `self`.
                let name: &'static str = unsafe { &*(&**name as *const str) };
                GroupName {
                    name: RStr::from_str(name),
                    index: *index,
                }
            })
            .collect();
        GroupNames {
            _names: names.into_iter().map(|(n, _)| n).collect(),
            table,
        }
    }

    fn as_slice(&self) -> &[GroupName<'_>] {
        &self.table
    }
}

/// Up to this many literals, comparing the line with each beats hashing
/// it: about 2 ns against 8 ns for the four of the default plugins.
const FEW_LITERALS: usize = 8;

/// Lines that equal one of the literal patterns, each with the route that
/// the full table picks for it. The answer is the regex's own, worked out
/// once: an earlier pattern such as `\w+` that also matches the literal
/// wins here exactly as it would in a search.
enum Literals {
    Few(Vec<(Box<str>, usize)>),
    Many {
        /// Bit `n` set if a literal is `n` bytes long (63: or longer), so
        /// that most lines with arguments are turned away before hashing.
        lengths: u64,
        map: HashMap<Box<str>, usize>,
    },
}

impl Literals {
    fn new(literals: impl Iterator<Item = String>, all: &meta::Regex) -> Literals {
        let map: HashMap<Box<str>, usize> = literals
            // Such lines take the control path, which only some routes see.
            .filter(|l| !has_control_characters(l))
            .filter_map(|l| first_match(all, &l).map(|route| (l.into_boxed_str(), route)))
            .collect();
        if map.len() <= FEW_LITERALS {
            Literals::Few(map.into_iter().collect())
        } else {
            let lengths = map.keys().fold(0, |bits, l| bits | Literals::length_bit(l));
            Literals::Many { lengths, map }
        }
    }

    fn get(&self, line: &str) -> Option<usize> {
        match self {
            Literals::Few(few) => few.iter().find(|(l, _)| **l == *line).map(|&(_, r)| r),
            Literals::Many { lengths, map } => {
                if lengths & Literals::length_bit(line) == 0 {
                    return None;
                }
                map.get(line).copied()
            }
        }
    }

    fn length_bit(text: &str) -> u64 {
        1 << text.len().min(63)
    }
}

/// The text an anchored pattern matches, if it matches exactly one: the
/// pattern between the anchors is one literal (adjacent ones are merged
/// when parsed) or nothing. Case-insensitive letters parse to classes, not
/// literals, and so are left to the regex.
fn literal(anchored: &Hir) -> Option<String> {
    let HirKind::Concat(subs) = anchored.kind() else {
        return None;
    };
    let is = |h: &Hir, look: Look| matches!(h.kind(), HirKind::Look(l) if *l == look);
    let [start, middle @ .., end] = subs.as_slice() else {
        return None;
    };
    if !is(start, Look::Start) || !is(end, Look::End) {
        return None;
    }
    let bytes = match middle {
        [] => Vec::new(),
        [h] => match h.kind() {
            HirKind::Literal(l) => l.0.to_vec(),
            _ => return None,
        },
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

/// One regex for many anchored patterns, reporting the first that matches.
fn first_match_regex(patterns: &[&Hir]) -> Result<meta::Regex, Box<meta::BuildError>> {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .nfa_size_limit(Some(TABLE_SIZE_LIMIT)),
        )
        .build_many_from_hir(patterns)
        .map_err(Box::new)
}

/// The lowest-numbered pattern that matches the whole line. All patterns
/// are anchored at both ends, so every match ends at the end of the line
/// and a forward pass alone decides which pattern wins.
fn first_match(regex: &meta::Regex, line: &str) -> Option<usize> {
    regex
        .search_half(&Input::new(line))
        .map(|m| m.pattern().as_usize())
}

/// C0 controls other than tab, and DEL: what a terminal user cannot mean
/// to send as part of a command.
pub fn has_control_characters(line: &str) -> bool {
    line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Whether `pattern` names control characters itself — a literal such as
/// `\x00`, or a class such as `[\x00-\x1f]` or `\p{Cc}` — rather than only
/// admitting them through `.`, a negated class or `\s`.
pub fn asks_for_control_characters(pattern: &str) -> bool {
    use regex_syntax::ast::{Ast, parse::Parser};
    fn class_has_controls(text: &str) -> bool {
        let Ok(hir) = regex_syntax::Parser::new().parse(text) else {
            return false;
        };
        match hir.kind() {
            regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => {
                c.ranges().iter().any(|r| {
                    let (lo, hi) = (r.start() as u32, r.end() as u32);
                    (lo <= 0x08) || (lo <= 0x1f && hi >= 0x0a) || (lo <= 0x7f && hi >= 0x7f)
                })
            }
            _ => false,
        }
    }
    fn walk(ast: &Ast, pattern: &str) -> bool {
        match ast {
            Ast::Literal(l) => {
                let c = l.c as u32;
                (c < 0x20 && c != 0x09) || c == 0x7f
            }
            Ast::ClassBracketed(c) if !c.negated => {
                class_has_controls(&pattern[c.span.start.offset..c.span.end.offset])
            }
            Ast::ClassUnicode(c) if !c.negated => {
                class_has_controls(&pattern[c.span.start.offset..c.span.end.offset])
            }
            Ast::Repetition(r) => walk(&r.ast, pattern),
            Ast::Group(g) => walk(&g.ast, pattern),
            Ast::Alternation(a) => a.asts.iter().any(|a| walk(a, pattern)),
            Ast::Concat(c) => c.asts.iter().any(|a| walk(a, pattern)),
            _ => false,
        }
    }
    match Parser::new().parse(pattern) {
        Ok(ast) => walk(&ast, pattern),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[&str]) -> meta::Regex {
        let hirs: Vec<Hir> = patterns
            .iter()
            .map(|p| crate::pattern::anchored(p).unwrap())
            .collect();
        first_match_regex(&hirs.iter().collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_first_matching_pattern_wins() {
        let patterns = [r"A.*", "AB", r"\w+", "B", "", r"A\d+", "ABC|X"];
        let re = table(&patterns);
        let naive = |line: &str| {
            patterns.iter().position(|p| {
                crate::pattern::HookPattern::compile(p)
                    .unwrap()
                    .captures
                    .is_match(line)
            })
        };
        for line in ["AB", "ABC", "B", "", "A12", "X", "x", "-", "AB C", "ZZ"] {
            assert_eq!(first_match(&re, line), naive(line), "{line:?}");
        }
        assert_eq!(first_match(&re, "B"), Some(2), "\\w+ comes before B");
    }

    #[test]
    fn a_thousand_patterns_agree_with_a_loop() {
        let mut patterns: Vec<String> = (0..1000).map(|i| format!("NOOP{i}")).collect();
        patterns.push(r"NOOP\d+ (.*)".into());
        patterns.push("HELLO".into());
        let re = table(&patterns.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(first_match(&re, "NOOP0"), Some(0));
        assert_eq!(first_match(&re, "NOOP999"), Some(999));
        assert_eq!(first_match(&re, "NOOP99 x"), Some(1000));
        assert_eq!(first_match(&re, "HELLO"), Some(1001));
        assert_eq!(first_match(&re, "NOOP1000"), None);
        assert_eq!(first_match(&re, "HELLO "), None);
    }

    /// Where `target` sends each line, without the control path: the
    /// literal lookup first, then the regex. Checked against a loop over
    /// the patterns one by one; returns how many lines the lookup answered.
    fn agrees_with_a_loop(patterns: &[&str], lines: &[&str]) -> usize {
        let hirs: Vec<Hir> = patterns
            .iter()
            .map(|p| crate::pattern::anchored(p).unwrap())
            .collect();
        let all = first_match_regex(&hirs.iter().collect::<Vec<_>>()).unwrap();
        let literals = Literals::new(hirs.iter().filter_map(literal), &all);
        let each: Vec<meta::Regex> = patterns
            .iter()
            .map(|p| crate::pattern::HookPattern::compile(p).unwrap().captures)
            .collect();
        let mut fast = 0;
        for line in lines {
            let naive = each.iter().position(|r| r.is_match(*line));
            let found = literals.get(line);
            fast += usize::from(found.is_some());
            let target = found.or_else(|| first_match(&all, line));
            assert_eq!(target, naive, "{line:?} in {patterns:?}");
        }
        fast
    }

    #[test]
    fn literal_patterns_are_recognised() {
        let of = |p: &str| literal(&crate::pattern::anchored(p).unwrap());
        assert_eq!(of("HELLO").as_deref(), Some("HELLO"));
        assert_eq!(of(r"A\.B").as_deref(), Some("A.B"));
        assert_eq!(of("(?:HEL)LO").as_deref(), Some("HELLO"));
        assert_eq!(of("").as_deref(), Some(""));
        assert_eq!(of("HÉLLO").as_deref(), Some("HÉLLO"));
        for p in ["(?i)hello", "HEL+O", "HELLO|WHO", "(HELLO)", r"\w+", "A.B"] {
            assert_eq!(of(p), None, "{p}");
        }
    }

    #[test]
    fn a_literal_behind_a_broader_pattern_goes_to_the_broader_one() {
        let lines = ["HELLO", "TIME", "WHO", "HELLO ", "hello", ""];
        assert_eq!(agrees_with_a_loop(&[r"\w+", "HELLO", "TIME"], &lines), 2);
        assert_eq!(agrees_with_a_loop(&["TIME", ".*", "HELLO"], &lines), 2);
        assert_eq!(agrees_with_a_loop(&["HELLO", r"[A-Z]+", "WHO"], &lines), 2);
    }

    #[test]
    fn duplicate_literals_go_to_the_first() {
        let patterns = ["WHO", "HELLO", "HELLO", r"\w+", "HELLO"];
        assert_eq!(agrees_with_a_loop(&patterns, &["HELLO", "WHO", "X"]), 2);
    }

    #[test]
    fn case_insensitive_patterns_are_left_to_the_regex() {
        let lines = ["HELLO", "hello", "Hello", "HELLo "];
        assert_eq!(agrees_with_a_loop(&["(?i)hello", "HELLO"], &lines), 1);
        assert_eq!(agrees_with_a_loop(&["HELLO", "(?i)hello"], &lines), 1);
        assert_eq!(agrees_with_a_loop(&["(?i:h)ELLO", "HELLO"], &lines), 1);
    }

    #[test]
    fn the_empty_pattern_is_the_empty_line() {
        assert_eq!(agrees_with_a_loop(&["A", "", "B"], &["", "A", "B", " "]), 3);
        assert_eq!(agrees_with_a_loop(&["A*", ""], &["", "A"]), 1);
    }

    #[test]
    fn escaped_metacharacters_are_literal() {
        let patterns = [r"A\.B", r"\(X\)", r"1\+1", "A.B"];
        let lines = ["A.B", "AxB", "(X)", "X", "1+1", "11"];
        assert_eq!(agrees_with_a_loop(&patterns, &lines), 3);
    }

    #[test]
    fn a_literal_after_a_thousand_patterns() {
        let mut patterns: Vec<String> = (0..1000).map(|i| format!("NOOP{i}")).collect();
        patterns.push(r"NOOP\d+ (.*)".into());
        patterns.push("HELLO".into());
        patterns.push("NOOP7".into());
        patterns.push("NOOP3 y".into());
        let long = "L".repeat(100);
        patterns.push(long.clone());
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let lines = [
            "HELLO",
            "NOOP0",
            "NOOP7",
            "NOOP999",
            "NOOP3 y",
            &long,
            "NOOP1000",
            "NOOP1 x",
            &long[1..],
        ];
        assert_eq!(agrees_with_a_loop(&patterns, &lines), 6);
    }

    #[test]
    fn literals_with_control_characters_take_the_control_path() {
        let hirs = [crate::pattern::anchored(r"A\x01B").unwrap()];
        let all = first_match_regex(&hirs.iter().collect::<Vec<_>>()).unwrap();
        let literals = Literals::new(hirs.iter().filter_map(literal), &all);
        assert_eq!(literals.get("A\u{1}B"), None);
    }

    #[test]
    fn control_characters_must_be_asked_for() {
        for p in [
            r"RAW \x00",
            r"RAW [\x00-\x1f]+",
            r"\p{Cc}",
            "A\u{1}B",
            r"(?:X|\x7f)",
        ] {
            assert!(asks_for_control_characters(p), "{p}");
        }
        for p in [
            "ECHO (.*)",
            r"[^a]+",
            r"\s+",
            r"\PC+",
            "[a-z]",
            "HELLO",
            r"\t",
        ] {
            assert!(!asks_for_control_characters(p), "{p}");
        }
    }

    #[test]
    fn control_character_detection() {
        assert!(has_control_characters("A\0B"));
        assert!(has_control_characters("A\u{1b}[2J"));
        assert!(has_control_characters("\u{7f}"));
        assert!(!has_control_characters("A\tB é"));
    }
}
