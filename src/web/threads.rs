//! How many threads the CPU path computes on: the training worker and its helpers (`pool.rs`), one wasm instance
//! per thread, each holding its own backbone (about 120 MB of renderer memory,
//! bench/results/2026-12-01-app-embed.md).

/// Threads used at most by default, the training worker included.
pub const DEFAULT_MAX: usize = 4;

/// The most `?threads=N` may ask for: beyond the cores a browser reports, threads only take turns.
pub const PARAM_MAX: usize = 16;

/// What the page decided, and a note for the user when their `?threads=` was not taken as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads {
    pub count: usize,
    pub note: Option<String>,
}

/// The threads for a browser that reports `cores` logical cores and `memory_gb` of device memory (where it says),
/// with `param` the page's `?threads=` if any. By default one per core up to [`DEFAULT_MAX`], one where the browser
/// reports under 2 GB. `?threads=N` is taken between 1 and the cores (at most [`PARAM_MAX`]); anything else is
/// refused with a note saying what is used instead.
pub fn choose(param: Option<&str>, cores: usize, memory_gb: Option<f64>) -> Threads {
    let cores = cores.max(1);
    let default = if memory_gb.is_some_and(|gb| gb < 2.0) {
        1
    } else {
        cores.min(DEFAULT_MAX)
    };
    let most = cores.min(PARAM_MAX);
    let Some(param) = param else {
        return Threads {
            count: default,
            note: None,
        };
    };
    let (count, note) = match param.trim().parse::<usize>() {
        Ok(n) if (1..=most).contains(&n) => (n, None),
        Ok(0) => (1, Some("?threads=0 asks for no thread at all: using 1".to_string())),
        Ok(n) => (
            most,
            Some(format!(
                "?threads={n} is more than the {most} this browser can use (it reports {cores} cores): using {most}"
            )),
        ),
        Err(_) => (
            default,
            Some(format!(
                "?threads={param} is not a number of threads (1 to {most}): using {default}"
            )),
        ),
    };
    Threads { count, note }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_one_per_core_up_to_four_and_one_on_small_devices() {
        assert_eq!(choose(None, 2, None).count, 2);
        assert_eq!(choose(None, 16, Some(8.0)).count, DEFAULT_MAX);
        assert_eq!(choose(None, 8, Some(1.0)).count, 1);
        assert_eq!(choose(None, 0, None).count, 1);
        assert_eq!(choose(None, 8, None).note, None);
    }

    #[test]
    fn the_parameter_is_bounded_and_a_bad_one_is_named() {
        assert_eq!(choose(Some("3"), 8, None), Threads { count: 3, note: None });
        let many = choose(Some("500"), 8, None);
        assert_eq!(many.count, 8);
        assert!(many.note.as_deref().unwrap().contains("?threads=500"), "{many:?}");
        assert_eq!(choose(Some("64"), 64, None).count, PARAM_MAX);
        let zero = choose(Some("0"), 8, None);
        assert_eq!(zero.count, 1);
        assert!(zero.note.is_some());
        let junk = choose(Some("lots"), 2, None);
        assert_eq!(junk.count, 2);
        assert!(junk.note.as_deref().unwrap().contains("not a number"), "{junk:?}");
    }
}
