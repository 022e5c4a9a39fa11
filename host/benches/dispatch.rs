//! Finding the hook for a line, against the number of hooks loaded.
//!
//! `first-match` is what the host does (one multi-pattern regex whose
//! leftmost-first match is the winning hook); `RegexSet::matches` and a loop
//! of `is_match` are the alternatives it was chosen over.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use host::dispatch::Target;

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch");
    for hooks in [1usize, 10, 100, 1000] {
        let table = common::noop_table(hooks);
        let last = format!("NOOP{}", hooks - 1);
        group.bench_with_input(
            BenchmarkId::new("first-match/last-hook", hooks),
            &last,
            |b, line| b.iter(|| matches!(table.target(black_box(line)), Target::Hook(_))),
        );
        group.bench_with_input(
            BenchmarkId::new("first-match/no-match", hooks),
            "HELLO",
            |b, line| b.iter(|| matches!(table.target(black_box(line)), Target::NotFound)),
        );

        let patterns: Vec<String> = (0..hooks).map(|i| format!(r"\A(?:NOOP{i})\z")).collect();
        let set = regex::RegexSet::new(&patterns).unwrap();
        group.bench_with_input(
            BenchmarkId::new("regexset/last-hook", hooks),
            &last,
            |b, line| b.iter(|| set.matches(black_box(line)).iter().next()),
        );
        let each: Vec<regex::Regex> = patterns
            .iter()
            .map(|p| regex::Regex::new(p).unwrap())
            .collect();
        group.bench_with_input(
            BenchmarkId::new("is-match-loop/last-hook", hooks),
            &last,
            |b, line| b.iter(|| each.iter().position(|r| r.is_match(black_box(line)))),
        );
    }
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
