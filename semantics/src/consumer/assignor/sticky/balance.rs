//! Step 2b of the sticky assignment: moving partitions until balanced.
//!
//! A move takes one partition from a member and gives it to an eligible member
//! holding at least two fewer. When subscriptions differ, a direct move may be
//! impossible while a chain is not (A passes a partition to B, B one of its own
//! to C), so the search is breadth-first over "can pass a partition to" and
//! the shortest chain wins; for identical subscriptions every chain is a single
//! move. Java's `AbstractStickyAssignor.isBalanced` only checks direct moves,
//! so this balances at least as well. Each move lowers the sum of squared
//! loads, hence the loop terminates, and stops as soon as nothing can improve,
//! which keeps moves to the minimum.

use std::cmp::Reverse;
use std::collections::VecDeque;

use super::{Part, Plan};

/// Moves partitions until no member can pass one, directly or along a chain,
/// to a member holding at least two fewer.
pub(super) fn balance(plan: &mut Plan<'_>) {
    while let Some(path) = find_path(plan) {
        if !shift(plan, &path) {
            break; // unreachable: every edge of a found path can pass a partition
        }
    }
}

/// The shortest chain starting at the most loaded member that has one.
fn find_path(plan: &Plan<'_>) -> Option<Vec<usize>> {
    let n = plan.load.len();
    let min = plan.load.iter().copied().min()?;
    let mut donors: Vec<usize> = (0..n).collect();
    donors.sort_by_key(|&i| (Reverse(plan.load[i]), i));
    // Shared across donors: whatever a more loaded donor reached without
    // finding a target cannot lead a less loaded donor to one either.
    let mut seen = vec![false; n];
    donors
        .into_iter()
        .take_while(|&d| plan.load[d] >= min + 2)
        .find_map(|d| path_from(plan, d, &mut seen))
}

/// Breadth-first search from `from` to a member holding at least two fewer.
fn path_from(plan: &Plan<'_>, from: usize, seen: &mut [bool]) -> Option<Vec<usize>> {
    if seen[from] {
        return None;
    }
    let mut by_load: Vec<usize> = (0..plan.load.len()).collect();
    by_load.sort_by_key(|&i| (plan.load[i], i));
    let mut parent = vec![None; plan.load.len()];
    seen[from] = true;
    let mut queue = VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        for &v in &by_load {
            if seen[v] || !can_pass(plan, u, v) {
                continue;
            }
            seen[v] = true;
            parent[v] = Some(u);
            if plan.load[v] + 2 <= plan.load[from] {
                return Some(trace(&parent, v));
            }
            queue.push_back(v);
        }
    }
    None
}

/// Whether `u` holds a partition of a topic `v` subscribes to.
fn can_pass(plan: &Plan<'_>, u: usize, v: usize) -> bool {
    plan.held[u].keys().any(|t| plan.subs[v].contains_key(t))
}

/// The path from the search root to `end`, root first.
fn trace(parent: &[Option<usize>], end: usize) -> Vec<usize> {
    let mut path = vec![end];
    let mut at = end;
    while let Some(p) = parent[at] {
        path.push(p);
        at = p;
    }
    path.reverse();
    path
}

/// Passes one partition along every edge of `path`; false if an edge cannot.
fn shift(plan: &mut Plan<'_>, path: &[usize]) -> bool {
    for hop in path.windows(2) {
        let Some(part) = pick(plan, hop[0], hop[1]) else {
            return false;
        };
        plan.take(hop[0], part);
        plan.give(hop[1], part);
    }
    true
}

/// Which partition `u` passes to `v`. Prefer one `v` owned before (no
/// revocation round), then one `u` did not own (it only just got it, nobody
/// consumes it yet), then the highest, to stay deterministic.
fn pick<'a>(plan: &Plan<'a>, u: usize, v: usize) -> Option<Part<'a>> {
    plan.parts_of(u)
        .filter(|&p| plan.eligible(v, p))
        .max_by_key(|p| (plan.claims[v].contains(p), !plan.claims[u].contains(p), *p))
}
