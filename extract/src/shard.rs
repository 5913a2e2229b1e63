//! `--shard`: which task of a cluster job this run is. The scheduler starts
//! the tasks; each one's share follows from its index alone
//! (`featurefile::shards`), so there is nothing to coordinate.

use std::fmt;

/// What the user wrote: `K/N`, `auto` (a Slurm array task: index
/// SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) or
/// `auto/N` (a Kubernetes Indexed Job, which has no count variable; in a
/// Slurm array, the task ids are then the shard indices, so
/// `--array=3,7` reruns shards 3 and 7 of N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    Fixed { index: usize, count: usize },
    Auto { count: Option<usize> },
}

/// This task: index below count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub index: usize,
    pub count: usize,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("--shard {0:?}: expected K/N (task K of N, 0-based), auto (a Slurm array task) or auto/N (a Kubernetes Indexed Job of N)")]
    Syntax(String),
    #[error("--shard {index}/{count}: the task index must be below the count (0-based: 0 to {max})", max = count.saturating_sub(1))]
    IndexTooLarge { index: usize, count: usize },
    #[error("--shard: the count must be at least 1")]
    ZeroCount,
    #[error("--shard: {0} tasks is more than the {max} a run may be split into", max = featurefile::shards::MAX_PARTS)]
    TooManyTasks(usize),
    #[error("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm array task) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; outside a scheduler give --shard K/N")]
    NoScheduler,
    #[error("--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set; give --shard K/N")]
    TwoSchedulers,
    #[error("--shard auto: {name} is {}, not a number", match .value { Some(v) => format!("{v:?}"), None => "not set".into() })]
    BadVariable { name: &'static str, value: Option<String> },
    #[error("--shard auto: a Kubernetes Indexed Job has no count variable; write --shard auto/N with N the Job's completions")]
    KubernetesNeedsCount,
    #[error("--shard auto/{count}: SLURM_ARRAY_TASK_ID is {id}, not below {count} (with auto/N the array's task ids are the shard indices: --array=0-{max})", max = count - 1)]
    IdNotAShard { id: usize, count: usize },
    #[error("--shard auto: SLURM_ARRAY_TASK_ID {id} minus SLURM_ARRAY_TASK_MIN {min} (step {step}) gives task {index}, not below SLURM_ARRAY_TASK_COUNT {count}; submit the array as --array=0-{max}", max = count.saturating_sub(1))]
    OutsideArray { id: usize, min: usize, step: usize, index: usize, count: usize },
}

impl std::str::FromStr for ShardSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let syntax = || Error::Syntax(s.to_string());
        let number = |t: &str| t.parse::<usize>().map_err(|_| syntax());
        let count = |t: &str| match number(t)? {
            0 => Err(Error::ZeroCount),
            n if n > featurefile::shards::MAX_PARTS => Err(Error::TooManyTasks(n)),
            n => Ok(n),
        };
        match s.split_once('/') {
            None if s == "auto" => Ok(ShardSpec::Auto { count: None }),
            Some(("auto", n)) => Ok(ShardSpec::Auto { count: Some(count(n)?) }),
            Some((k, n)) => {
                let (index, count) = (number(k)?, count(n)?);
                if index >= count {
                    return Err(Error::IndexTooLarge { index, count });
                }
                Ok(ShardSpec::Fixed { index, count })
            }
            None => Err(syntax()),
        }
    }
}

impl ShardSpec {
    /// This task, from the spec and, for `auto`, the scheduler's variables
    /// (`var` reads one: the environment, or a test's map).
    pub fn resolve(self, var: impl Fn(&str) -> Option<String>) -> Result<Task, Error> {
        let given = match self {
            ShardSpec::Fixed { index, count } => return Ok(Task { index, count }),
            ShardSpec::Auto { count } => count,
        };
        let number = |name: &'static str| -> Result<usize, Error> {
            let value = var(name);
            value.as_deref().and_then(|v| v.trim().parse().ok()).ok_or(Error::BadVariable { name, value })
        };
        match (var("SLURM_ARRAY_TASK_ID").is_some(), var("JOB_COMPLETION_INDEX").is_some()) {
            (true, true) => Err(Error::TwoSchedulers),
            (false, false) => Err(Error::NoScheduler),
            (true, false) => {
                let id = number("SLURM_ARRAY_TASK_ID")?;
                if let Some(count) = given {
                    return if id < count {
                        Ok(Task { index: id, count })
                    } else {
                        Err(Error::IdNotAShard { id, count })
                    };
                }
                let min = number("SLURM_ARRAY_TASK_MIN")?;
                let count = number("SLURM_ARRAY_TASK_COUNT")?;
                // Set for every array; absent only from hand-made environments.
                let step =
                    if var("SLURM_ARRAY_TASK_STEP").is_some() { number("SLURM_ARRAY_TASK_STEP")?.max(1) } else { 1 };
                if count == 0 {
                    return Err(Error::ZeroCount);
                }
                if count > featurefile::shards::MAX_PARTS {
                    return Err(Error::TooManyTasks(count));
                }
                let index = id.checked_sub(min).map(|d| d / step);
                match index {
                    Some(index) if index < count && (id - min) % step == 0 => Ok(Task { index, count }),
                    _ => Err(Error::OutsideArray { id, min, step, index: index.unwrap_or(usize::MAX), count }),
                }
            }
            (false, true) => {
                let count = given.ok_or(Error::KubernetesNeedsCount)?;
                let index = number("JOB_COMPLETION_INDEX")?;
                if index >= count {
                    return Err(Error::IndexTooLarge { index, count });
                }
                Ok(Task { index, count })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn fixed_shards_parse_and_bad_ones_say_why() {
        assert_eq!("3/16".parse(), Ok(ShardSpec::Fixed { index: 3, count: 16 }));
        assert_eq!("auto".parse(), Ok(ShardSpec::Auto { count: None }));
        assert_eq!("auto/8".parse(), Ok(ShardSpec::Auto { count: Some(8) }));
        assert_eq!("16/16".parse::<ShardSpec>(), Err(Error::IndexTooLarge { index: 16, count: 16 }));
        assert_eq!("0/0".parse::<ShardSpec>(), Err(Error::ZeroCount));
        assert_eq!("auto/0".parse::<ShardSpec>(), Err(Error::ZeroCount));
        // A count nothing could be sized by (it once reached classify as 10^11 part names).
        assert_eq!("0/100000000000".parse::<ShardSpec>(), Err(Error::TooManyTasks(100_000_000_000)));
        assert_eq!("auto/100001".parse::<ShardSpec>(), Err(Error::TooManyTasks(100_001)));
        assert_eq!("99999/100000".parse(), Ok(ShardSpec::Fixed { index: 99_999, count: 100_000 }));
        for bad in ["", "3", "a/b", "-1/4", "3/4/5", "auto/", "slurm"] {
            assert!(matches!(bad.parse::<ShardSpec>(), Err(Error::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn slurm_arrays_give_index_and_count() {
        let auto = ShardSpec::Auto { count: None };
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "4"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
        assert_eq!(auto.resolve(&slurm), Ok(Task { index: 3, count: 8 }));
        // A rerun of chosen shards (--array=7 with auto/16): the task id is the shard.
        let rerun =
            env(&[("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "7"), ("SLURM_ARRAY_TASK_COUNT", "1")]);
        assert_eq!(auto.resolve(&rerun), Ok(Task { index: 0, count: 1 }));
        assert_eq!(ShardSpec::Auto { count: Some(16) }.resolve(&rerun), Ok(Task { index: 7, count: 16 }));
        assert_eq!(ShardSpec::Auto { count: Some(7) }.resolve(&rerun), Err(Error::IdNotAShard { id: 7, count: 7 }));
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(auto.resolve(&stepped), Ok(Task { index: 3, count: 4 }));
        let missing = env(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "0")]);
        let e = auto.resolve(&missing).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_COUNT is not set"), "{e}");
        let sparse =
            env(&[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
        assert!(matches!(auto.resolve(&sparse), Err(Error::OutsideArray { index: 8, count: 3, .. })));
        let junk = env(&[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
        assert!(auto.resolve(&junk).unwrap_err().to_string().contains("SLURM_ARRAY_TASK_ID is \"x\""));
    }

    #[test]
    fn kubernetes_needs_the_count_on_the_command_line() {
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(ShardSpec::Auto { count: Some(16) }.resolve(&k8s), Ok(Task { index: 5, count: 16 }));
        assert_eq!(ShardSpec::Auto { count: None }.resolve(&k8s), Err(Error::KubernetesNeedsCount));
        assert_eq!(ShardSpec::Auto { count: Some(5) }.resolve(&k8s), Err(Error::IndexTooLarge { index: 5, count: 5 }));
        assert_eq!(ShardSpec::Auto { count: Some(4) }.resolve(env(&[])), Err(Error::NoScheduler));
        let both = env(&[("JOB_COMPLETION_INDEX", "1"), ("SLURM_ARRAY_TASK_ID", "1")]);
        assert_eq!(ShardSpec::Auto { count: None }.resolve(both), Err(Error::TwoSchedulers));
        assert_eq!(ShardSpec::Fixed { index: 2, count: 3 }.resolve(env(&[])), Ok(Task { index: 2, count: 3 }));
    }
}
