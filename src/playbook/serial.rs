//! `serial` and `max_fail_percentage`: a play's hosts in batches, each batch through the whole
//! play before the next starts, and how many failures a batch tolerates.
//!
//! As in Ansible, `serial` is a number of hosts, a percentage of the play's hosts (rounded
//! down, at least one), or a list of those: the batches take the sizes in turn and the last
//! size repeats (`serial: [1, 30%, 100%]`: a canary, then a third, then the rest). `0` puts all
//! remaining hosts in one batch.

use crate::diag::Diag;
use crate::yaml::{Kind, Node};

/// One entry of `serial`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchSize {
    Hosts(u64),
    Percent(u64),
}

impl BatchSize {
    /// Ansible's `pct_to_int`: a percentage of `total`, rounded down but at least one.
    fn hosts(self, total: usize) -> usize {
        match self {
            BatchSize::Hosts(n) => n as usize,
            BatchSize::Percent(p) => ((p as f64 / 100.0) * total as f64) as usize,
        }
        .max(match self {
            BatchSize::Percent(_) => 1,
            BatchSize::Hosts(_) => 0,
        })
    }
}

/// The play's `serial`: one size or a list of them (empty: one batch of every host).
pub fn parse_serial(node: &Node) -> Result<Vec<BatchSize>, Diag> {
    match &node.kind {
        Kind::Seq(items) => items.iter().map(parse_size).collect(),
        _ => parse_size(node).map(|s| vec![s]),
    }
}

fn parse_size(node: &Node) -> Result<BatchSize, Diag> {
    let wrong = || {
        Diag::at(
            &node.span,
            format!(
                "serial must be a number of hosts, a percentage (\"30%\") or a list of them, found {}",
                node.describe()
            ),
        )
    };
    match &node.kind {
        Kind::Int(i) if *i >= 0 => Ok(BatchSize::Hosts(*i as u64)),
        Kind::Str(s) => match s.trim().strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse()
                .map(BatchSize::Percent)
                .map_err(|_| wrong()),
            None => s.trim().parse().map(BatchSize::Hosts).map_err(|_| wrong()),
        },
        _ => Err(wrong()),
    }
}

/// `max_fail_percentage`: a number (`30`, `25.5`) or a percentage string (`"30%"`).
pub fn parse_max_fail(node: &Node) -> Result<f64, Diag> {
    let value = match &node.kind {
        Kind::Int(i) => Some(*i as f64),
        Kind::Float(f) => Some(*f),
        Kind::Str(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
        _ => None,
    };
    value.filter(|v| (0.0..=100.0).contains(v)).ok_or_else(|| {
        Diag::at(
            &node.span,
            format!(
                "max_fail_percentage must be a percentage from 0 to 100, found {}",
                node.describe()
            ),
        )
    })
}

/// The play's hosts (in execution order) cut into batches as Ansible cuts them.
pub fn batches(sizes: &[BatchSize], hosts: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![];
    let mut left = hosts;
    let mut i = 0;
    while !left.is_empty() {
        let size = sizes.get(i).map_or(0, |s| s.hosts(hosts.len()));
        let take = if size == 0 {
            left.len()
        } else {
            size.min(left.len())
        };
        out.push(left[..take].to_vec());
        left = &left[take..];
        i = (i + 1).min(sizes.len().saturating_sub(1));
    }
    out
}

/// Whether a batch of `size` hosts with `failed` failures has more than `max` percent failed
/// (Ansible stops the play there).
pub fn too_many_failed(failed: usize, size: usize, max: f64) -> bool {
    size > 0 && (failed as f64 / size as f64) > max / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    fn sizes(b: &[Vec<String>]) -> Vec<usize> {
        b.iter().map(Vec::len).collect()
    }

    #[test]
    fn batches_take_the_sizes_in_turn_and_repeat_the_last() {
        use BatchSize::*;
        assert_eq!(sizes(&batches(&[], &hosts(5))), [5]);
        assert_eq!(sizes(&batches(&[Hosts(2)], &hosts(5))), [2, 2, 1]);
        assert_eq!(
            sizes(&batches(&[Hosts(1), Percent(30), Percent(100)], &hosts(10))),
            [1, 3, 6]
        );
        assert_eq!(sizes(&batches(&[Percent(10)], &hosts(5))), [1, 1, 1, 1, 1]);
        assert_eq!(sizes(&batches(&[Hosts(1), Hosts(0)], &hosts(4))), [1, 3]);
    }

    #[test]
    fn more_than_the_percentage_stops() {
        assert!(!too_many_failed(1, 4, 25.0));
        assert!(too_many_failed(2, 4, 25.0));
        assert!(too_many_failed(1, 4, 0.0));
        assert!(!too_many_failed(4, 4, 100.0));
    }
}
