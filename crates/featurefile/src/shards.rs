//! A feature file split into parts, one per task of a cluster job (a Slurm
//! array, a Kubernetes Indexed Job): task K of N takes a contiguous range of
//! the sorted image list and writes `part-KKKKK-of-NNNNN.parquet`, so the
//! parts in order are the single-run file, row for row. Each part is a
//! feature file of the contract on its own, plus a shard record in its
//! footer (`extract.shard`).

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The footer's shard record: which share of which list a part holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based task index, below `count`.
    pub index: usize,
    pub count: usize,
    /// The first and last path of the part's range of the sorted list
    /// (`None` for an empty range: more tasks than images).
    pub first: Option<String>,
    pub last: Option<String>,
    /// Images in the range, read or not.
    pub images: usize,
    /// Images in the whole list, which every task lists; `None` for a
    /// split by whole tar shards, where a task lists only its own shards.
    pub total_images: Option<usize>,
    /// For a split by whole tar shards: which of the run's shards the part read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar_shards: Option<TarShards>,
}

/// A part's contiguous range of a run's tar shards (in name order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarShards {
    /// The first and last shard's file name (`None`: more tasks than shards).
    pub first: Option<String>,
    pub last: Option<String>,
    /// Shards in the part's range, and in the run.
    pub shards: usize,
    pub total_shards: usize,
}

/// Task `index` of `count`'s share of `total` items: contiguous, sizes
/// differing by at most one, in order, covering every item once.
pub fn range(total: usize, index: usize, count: usize) -> Range<usize> {
    assert!(index < count, "shard {index} of {count}");
    let at = |k: usize| (total as u128 * k as u128 / count as u128) as usize;
    at(index)..at(index + 1)
}

/// The most parts a run may be split into. Part names hold five digits,
/// and no image set needs more tasks; a count any larger (`--shard
/// 0/100000000000`) is a typo, refused before anything is sized by it.
pub const MAX_PARTS: usize = 100_000;

/// `part-00003-of-00016.parquet`.
pub fn part_name(index: usize, count: usize) -> String {
    format!("part-{index:05}-of-{count:05}.parquet")
}

/// (index, count) from a part's file name; `None` for any other name.
pub fn parse_part_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (k, n) = rest.split_once("-of-")?;
    let digits = |s: &str| s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(k) || !digits(n) {
        return None;
    }
    let (k, n) = (k.parse().ok()?, n.parse().ok()?);
    (k < n && n <= MAX_PARTS).then_some((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_list_in_order_once() {
        for total in [0, 1, 5, 7, 100, 1001] {
            for count in [1, 3, 7, 16] {
                let ranges: Vec<_> = (0..count).map(|k| range(total, k, count)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[count - 1].end, total);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "contiguous");
                }
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{total} over {count}: {sizes:?}");
            }
        }
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(part_name(3, 16), "part-00003-of-00016.parquet");
        assert_eq!(parse_part_name("part-00003-of-00016.parquet"), Some((3, 16)));
        assert_eq!(parse_part_name(&part_name(99_999, 100_000)), Some((99_999, 100_000)));
        // A count past MAX_PARTS names no part: nothing is sized by it.
        assert_eq!(parse_part_name(&part_name(0, 100_000_000_000)), None);
        for bad in
            ["part-3-of-16.parquet", "part-00016-of-00016.parquet", "part-00003-of-00016.parquet.partial", "x.parquet"]
        {
            assert_eq!(parse_part_name(bad), None, "{bad}");
        }
    }
}
