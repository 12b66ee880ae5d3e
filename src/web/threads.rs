//! How many threads the CPU path computes on: the training worker and its helpers (`pool.rs`), one wasm instance
//! per thread, each holding its own backbone (about 120 MB of renderer memory,
//! bench/results/2026-12-01-app-embed.md, plus a share of a deeper run's step).

/// Renderer memory one thread costs, with room for its share of a deeper run's step.
pub const THREAD_MB: f64 = 150.0;

/// The most threads the page uses, asked for or not: beyond the cores a browser reports threads only take turns,
/// and 16 is where the scaling benchmark stops (bench/results/2026-12-06-threads.md).
pub const MOST: usize = crate::finetune::shard::CPU_PARTS;

/// A browser reporting this much memory or less (`navigator.deviceMemory`, GB; Chromium reports at most 8) is
/// a phone's or a small tablet's, whose tab may be ended near 1–2 GB: few threads, a small activation cache.
pub const LOW_MEMORY_GB: f64 = 4.0;
pub const LOW_MEMORY_THREADS: usize = 2;
pub const LOW_MEMORY_CACHE_BYTES: usize = 64 << 20;

/// What the page decided, and a note for the user when it is not one thread per core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads {
    pub count: usize,
    pub note: Option<String>,
    /// The most bytes the deeper runs may cache activations in, where the device asks for less than the
    /// options' default.
    pub cache_bytes: Option<usize>,
}

/// The threads for a browser that reports `cores` logical cores and `memory_gb` of device memory (where it says),
/// with `param` the page's `?threads=` if any. By default one per core up to [`MOST`], within half the memory
/// at [`THREAD_MB`] each; [`LOW_MEMORY_THREADS`] and a small cache on a device of [`LOW_MEMORY_GB`] or less; one
/// under 2 GB. `?threads=N` is taken between 1 and the cores (at most [`MOST`]); anything else is refused with a
/// note saying what is used instead.
pub fn choose(param: Option<&str>, cores: usize, memory_gb: Option<f64>) -> Threads {
    let cores = cores.max(1);
    let most = cores.min(MOST);
    let low = memory_gb.filter(|&gb| gb <= LOW_MEMORY_GB);
    let default = match memory_gb {
        Some(gb) if gb < 2.0 => 1,
        Some(gb) if gb <= LOW_MEMORY_GB => most.min(LOW_MEMORY_THREADS),
        Some(gb) => most.min(((gb * 1024.0 / 2.0) / THREAD_MB) as usize).max(1),
        None => most,
    };
    let (count, param_note) = match param.map(|p| (p, p.trim().parse::<usize>())) {
        None => (default, None),
        Some((_, Ok(n))) if (1..=most).contains(&n) => (n, None),
        Some((_, Ok(0))) => (1, Some("?threads=0 asks for no thread at all: using 1".to_string())),
        Some((_, Ok(n))) => (
            most,
            Some(format!(
                "?threads={n} is more than the {most} this browser can use (it reports {cores} cores): using {most}"
            )),
        ),
        Some((param, Err(_))) => (
            default,
            Some(format!(
                "?threads={param} is not a number of threads (1 to {most}): using {default}"
            )),
        ),
    };
    let low_note = low.map(|gb| {
        format!(
            "This device reports {gb} GB of memory: training uses {count} thread{} and at most {} MB of cached \
             activations, so the tab stays small.",
            if count == 1 { "" } else { "s" },
            LOW_MEMORY_CACHE_BYTES >> 20
        )
    });
    let note = match (param_note, low_note) {
        (Some(a), Some(b)) => Some(format!("{a}. {b}")),
        (a, b) => a.or(b),
    };
    Threads {
        count,
        note,
        cache_bytes: low.map(|_| LOW_MEMORY_CACHE_BYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_one_per_core_within_memory_and_few_on_small_devices() {
        assert_eq!(choose(None, 2, None).count, 2);
        assert_eq!(choose(None, 16, Some(8.0)).count, 16);
        assert_eq!(choose(None, 64, None).count, MOST);
        // Chromium reports 8 GB at most: 8 GB holds 16 threads of 150 MB within half of it.
        assert_eq!(choose(None, 32, Some(8.0)).count, MOST);
        assert_eq!(choose(None, 8, Some(1.0)).count, 1);
        assert_eq!(choose(None, 0, None).count, 1);
        assert_eq!(choose(None, 8, None).note, None);
        assert_eq!(choose(None, 8, None).cache_bytes, None);
        let phone = choose(None, 8, Some(4.0));
        assert_eq!(phone.count, LOW_MEMORY_THREADS);
        assert_eq!(phone.cache_bytes, Some(LOW_MEMORY_CACHE_BYTES));
        assert!(phone.note.as_deref().unwrap().contains("4 GB"), "{phone:?}");
        assert_eq!(choose(None, 8, Some(6.0)).cache_bytes, None);
    }

    #[test]
    fn the_parameter_is_bounded_and_a_bad_one_is_named() {
        let plain = |count| Threads {
            count,
            note: None,
            cache_bytes: None,
        };
        assert_eq!(choose(Some("3"), 8, None), plain(3));
        let many = choose(Some("500"), 8, None);
        assert_eq!(many.count, 8);
        assert!(many.note.as_deref().unwrap().contains("?threads=500"), "{many:?}");
        assert_eq!(choose(Some("64"), 64, None).count, MOST);
        let zero = choose(Some("0"), 8, None);
        assert_eq!(zero.count, 1);
        assert!(zero.note.is_some());
        let junk = choose(Some("lots"), 2, None);
        assert_eq!(junk.count, 2);
        assert!(junk.note.as_deref().unwrap().contains("not a number"), "{junk:?}");
        // Asked for, more threads than a small device would get by default; the note says both.
        let asked = choose(Some("4"), 8, Some(2.0));
        assert_eq!(asked.count, 4);
        let note = asked.note.unwrap();
        assert!(note.contains("2 GB") && note.contains("4 threads"), "{note}");
    }
}
