//! The kernel programs loaded, and their maps as an API: which cgroups are traced and
//! watched, what the kernel recorded for them, the counters, and the ring buffer of events.

use std::{os::fd::AsRawFd, path::Path};

use aya::{
    maps::{Array, HashMap, MapData, MapError, PerCpuArray, RingBuf},
    Ebpf,
};
use tracer_common::{
    counter, filter_bit, maps, parent_entry, parse_parent_entry, watch_tag, ArgKey, CgroupPath,
    CgroupRecord, Event, CGROUP_PATH_LEN, MAX_PARENTS,
};

use super::{
    links::{self, Links},
    map_err, BpfError, KernelLayout,
};

/// Totals of the per-CPU counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub syscalls: u64,
    pub ring_drops: u64,
    pub out_of_range: u64,
    pub refusals: u64,
}

/// The loaded and attached programs with their maps. Dropping it detaches everything that is
/// not pinned.
pub struct Tracer {
    ebpf: Ebpf,
    links: Links,
    targets: HashMap<MapData, u64, CgroupRecord>,
    filter: Array<MapData, u64>,
    generation: Array<MapData, u64>,
    args: HashMap<MapData, ArgKey, u8>,
    watch: HashMap<MapData, CgroupPath, u32>,
    counters: PerCpuArray<MapData, u64>,
    parent_lens: Array<MapData, u32>,
    parents: Vec<String>,
    ring: Option<RingBuf<MapData>>,
}

impl Tracer {
    /// Loads the programs with the kernel's layout and attaches them.
    pub fn load(layout: &KernelLayout, refusals: bool) -> Result<Self, BpfError> {
        Self::load_pinned(layout, None, refusals)
    }

    /// Like [`load`](Self::load); with `pin`, maps and links live in that bpffs directory, so
    /// the kernel keeps recording when this process exits, and a later call with the same
    /// directory picks them up instead of attaching a second copy.
    pub fn load_pinned(
        layout: &KernelLayout,
        pin: Option<&Path>,
        refusals: bool,
    ) -> Result<Self, BpfError> {
        let tgid = std::process::id();
        let mut loader = layout.loader(&tgid);
        for (map, size) in test_sizes(|k| std::env::var(k).ok())? {
            loader.map_max_entries(map, size);
        }
        if let Some(dir) = pin {
            std::fs::create_dir_all(dir)
                .map_err(|e| BpfError::Load(format!("bpffs directory: {e}")))?;
            // Every map, so that programs attached by different processes share them; the
            // contract test checks that `maps::ALL` is every map of the object.
            for name in maps::ALL {
                loader.map_pin_path(name, links::map_pin(dir, name));
            }
        }
        let mut ebpf = loader
            .load(crate::EBPF_OBJECT)
            .map_err(|e| BpfError::Load(format!("{e:#}")))?;

        let mut take = |name: &'static str| {
            ebpf.take_map(name).ok_or(BpfError::Map {
                map: name,
                detail: "missing from the object".into(),
            })
        };
        let targets = HashMap::try_from(take(maps::TARGETS)?).map_err(map_err(maps::TARGETS))?;
        let args = HashMap::try_from(take(maps::ARGS)?).map_err(map_err(maps::ARGS))?;
        let filter = Array::try_from(take(maps::FILTER)?).map_err(map_err(maps::FILTER))?;
        let generation = Array::try_from(take(maps::GEN)?).map_err(map_err(maps::GEN))?;
        let watch = HashMap::try_from(take(maps::WATCH)?).map_err(map_err(maps::WATCH))?;
        let counters =
            PerCpuArray::try_from(take(maps::COUNTERS)?).map_err(map_err(maps::COUNTERS))?;
        let ring = RingBuf::try_from(take(maps::EVENTS)?).map_err(map_err(maps::EVENTS))?;
        let parent_lens =
            Array::try_from(take(maps::PARENT_LENS)?).map_err(map_err(maps::PARENT_LENS))?;

        let links = Links::attach(&mut ebpf, pin, refusals)?;
        let resumed = links.resumed();
        let mut tracer = Self {
            ebpf,
            links,
            targets,
            filter,
            generation,
            args,
            watch,
            counters,
            parent_lens,
            parents: Vec::new(),
            ring: Some(ring),
        };
        if resumed {
            tracer.reload_parents()?;
        }
        tracer.set_hooks(true)?;
        Ok(tracer)
    }

    /// Attaches the syscall programs or detaches them. Detached, no syscall on the host pays
    /// anything and nothing is recorded; the maps keep what was recorded. Links pinned by an
    /// earlier process are taken over; refusal detection turned off since then is detached.
    pub fn set_hooks(&mut self, on: bool) -> Result<(), BpfError> {
        self.links.set_hooks(&mut self.ebpf, on)?;
        // Tasks may have installed filters or changed cgroups while nothing watched their
        // syscalls: every CPU looks its task up again.
        if on {
            self.bump_generation()?;
        }
        Ok(())
    }

    /// Whether the syscall programs are attached (see [`set_hooks`](Self::set_hooks)).
    pub fn hooked(&self) -> bool {
        self.links.hooked()
    }

    /// Whether the programs were found attached (pinned) and kept, with what they recorded.
    pub fn resumed(&self) -> bool {
        self.links.resumed()
    }

    /// The ids of every cgroup in the kernel's filter map.
    pub fn cgroups(&self) -> Result<Vec<u64>, BpfError> {
        self.targets
            .keys()
            .filter(|k| !matches!(k, Err(MapError::KeyNotFound)))
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::TARGETS))
    }

    /// Starts tracing cgroup `id` (keeps what it already recorded if traced before).
    pub fn add_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
        const BPF_NOEXIST: u64 = 1;
        match self.targets.insert(id, CgroupRecord::EMPTY, BPF_NOEXIST) {
            Ok(()) => {}
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(map_err(maps::TARGETS)(e)),
        }
        // Record first, then its filter bit, then the new generation: a CPU that looks again
        // finds all three.
        let (word, bit) = filter_bit(id);
        update_filter_word(self, word, |w| w | bit)?;
        self.bump_generation()
    }

    /// Makes every CPU look its task up again (after the targets changed).
    fn bump_generation(&mut self) -> Result<(), BpfError> {
        let g = self.generation.get(&1, 0).map_err(map_err(maps::GEN))?;
        self.generation
            .set(1, g.wrapping_add(1), 0)
            .map_err(map_err(maps::GEN))
    }

    /// Clears the filter bit of a cgroup no longer traced, unless another target shares it.
    fn clear_filter_bit(&mut self, id: u64) -> Result<(), BpfError> {
        let (word, bit) = filter_bit(id);
        if word_bits(word, self.cgroups()?) & bit != 0 {
            return Ok(());
        }
        update_filter_word(self, word, |w| w & !bit)
    }

    /// What the kernel recorded for cgroup `id`, if it is traced.
    pub fn record(&self, id: u64) -> Result<Option<CgroupRecord>, BpfError> {
        match self.targets.get(&id, 0) {
            Ok(r) => Ok(Some(r)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(maps::TARGETS)(e)),
        }
    }

    /// The argument values recorded for the cgroups `ids`, in one pass over the map.
    pub fn args(&self, ids: &[u64]) -> Result<Vec<ArgKey>, BpfError> {
        let mut out = Vec::new();
        for key in self.args.keys() {
            match key {
                Ok(k) if ids.contains(&k.cgroup_id) => out.push(k),
                Ok(_) => {}
                // A key deleted while iterating restarts nothing we need.
                Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(maps::ARGS)(e)),
            }
        }
        Ok(out)
    }

    /// Stops tracing cgroup `id` and forgets what the kernel recorded for it.
    pub fn remove_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
        match self.targets.remove(&id) {
            Ok(()) => {}
            Err(e) if absent(&e) => {}
            Err(e) => return Err(map_err(maps::TARGETS)(e)),
        }
        self.clear_filter_bit(id)?;
        self.bump_generation()?;
        for key in self.args(&[id])? {
            match self.args.remove(&key) {
                Ok(()) => {}
                Err(e) if absent(&e) => {}
                Err(e) => return Err(map_err(maps::ARGS)(e)),
            }
        }
        Ok(())
    }

    /// Adopts cgroup `path` (relative to the cgroup2 root) whenever it is created; `tag` comes
    /// back in the ADOPTED event.
    pub fn watch(&mut self, path: &str, tag: u32) -> Result<(), BpfError> {
        let key = CgroupPath::new(path.as_bytes()).ok_or(BpfError::Map {
            map: maps::WATCH,
            detail: "empty cgroup path".into(),
        })?;
        self.watch.insert(key, tag, 0).map_err(map_err(maps::WATCH))
    }

    /// Adopts provisionally every cgroup created under `parent` (ADOPTED events tagged
    /// `watch_tag::PARENT`), so that a container is traced from its first syscall even when
    /// its id becomes known only after its cgroup was created. Returns false when all
    /// `MAX_PARENTS` slots are in use.
    pub fn watch_parent(&mut self, parent: &str) -> Result<bool, BpfError> {
        if self.parents.iter().any(|p| p == parent) {
            return Ok(true);
        }
        let slot = self.parents.len() as u32;
        if slot >= MAX_PARENTS || parent.len() >= CGROUP_PATH_LEN - 1 {
            return Ok(false);
        }
        self.watch(parent, watch_tag::PARENT)?;
        self.parent_lens
            .set(slot, parent_entry(parent.as_bytes()), 0)
            .map_err(map_err(maps::PARENT_LENS))?;
        self.parents.push(parent.to_string());
        Ok(true)
    }

    /// Rebuilds `parents` from the pinned maps: the WATCH keys tagged PARENT, in the order of
    /// their PARENT_LENS slots.
    fn reload_parents(&mut self) -> Result<(), BpfError> {
        let mut paths: Vec<String> = Vec::new();
        for entry in self.watch.iter() {
            let (key, tag) = entry.map_err(map_err(maps::WATCH))?;
            if tag == watch_tag::PARENT {
                let end = key
                    .bytes
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(key.bytes.len());
                paths.push(String::from_utf8_lossy(&key.bytes[..end]).into_owned());
            }
        }
        for slot in 0..MAX_PARENTS {
            let entry = self
                .parent_lens
                .get(&slot, 0)
                .map_err(map_err(maps::PARENT_LENS))?;
            let (len, _) = parse_parent_entry(entry);
            if len == 0 {
                break;
            }
            if let Some(i) = paths.iter().position(|p| p.len() == len) {
                self.parents.push(paths.remove(i));
            }
        }
        Ok(())
    }

    /// The parent directories watched with [`watch_parent`](Self::watch_parent).
    pub fn parents(&self) -> &[String] {
        &self.parents
    }

    pub fn unwatch(&mut self, path: &str) -> Result<(), BpfError> {
        let Some(key) = CgroupPath::new(path.as_bytes()) else {
            return Ok(());
        };
        match self.watch.remove(&key) {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(map_err(maps::WATCH)(e)),
        }
    }

    pub fn counters(&self) -> Result<Counters, BpfError> {
        let sum = |i: u32| -> Result<u64, BpfError> {
            Ok(self
                .counters
                .get(&i, 0)
                .map_err(map_err(maps::COUNTERS))?
                .iter()
                .sum())
        };
        Ok(Counters {
            syscalls: sum(counter::SYSCALLS)?,
            ring_drops: sum(counter::RING_DROPS)?,
            out_of_range: sum(counter::OUT_OF_RANGE)?,
            refusals: sum(counter::REFUSALS)?,
        })
    }

    /// The ring buffer, for a reader task; can be taken once.
    pub fn take_events(&mut self) -> Option<EventReader> {
        self.ring.take().map(|ring| EventReader { ring })
    }
}

/// Test-only knobs, read by [`Tracer::load`] and [`Tracer::load_pinned`] and nowhere else:
/// they shrink maps so that tests can fill them. Not for users: a smaller ring buffer drops
/// more events, and fewer TARGETS entries refuse cgroups sooner.
///
/// - `SECCOMP_TRACER_TEST_RING_BYTES`: the size of the EVENTS ring buffer, in bytes (a power
///   of two and a multiple of the page size, as the kernel requires);
/// - `SECCOMP_TRACER_TEST_MAX_CGROUPS`: how many cgroups TARGETS holds (at least 1).
///
/// A map reused from a pin keeps the size it was created with.
pub const TEST_RING_BYTES: &str = "SECCOMP_TRACER_TEST_RING_BYTES";
/// See [`TEST_RING_BYTES`].
pub const TEST_MAX_CGROUPS: &str = "SECCOMP_TRACER_TEST_MAX_CGROUPS";

/// The map sizes the test knobs ask for (see [`TEST_RING_BYTES`]), with `var` reading the
/// environment; a knob set to a size the kernel would refuse is an error naming it.
fn test_sizes(var: impl Fn(&str) -> Option<String>) -> Result<Vec<(&'static str, u32)>, BpfError> {
    let mut sizes = Vec::new();
    for (knob, map) in [
        (TEST_RING_BYTES, maps::EVENTS),
        (TEST_MAX_CGROUPS, maps::TARGETS),
    ] {
        let Some(value) = var(knob) else {
            continue;
        };
        let bad = |why: &str| BpfError::TestKnob(format!("{knob}={value}: {why}"));
        let size: u32 = value.trim().parse().map_err(|_| bad("not a number"))?;
        if size == 0 {
            return Err(bad("must be at least 1"));
        }
        if knob == TEST_RING_BYTES {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u32;
            if !size.is_power_of_two() || !size.is_multiple_of(page) {
                return Err(bad(&format!(
                    "must be a power of two and a multiple of the page size ({page})"
                )));
            }
        }
        sizes.push((map, size));
    }
    Ok(sizes)
}

/// What [`update_filter_word`] needs of the maps: FILTER words and TARGETS keys. A fake in
/// the tests plays the kernel's part.
trait FilterMaps {
    fn filter_word(&self, word: u32) -> Result<u64, BpfError>;
    fn set_filter_word(&mut self, word: u32, value: u64) -> Result<(), BpfError>;
    fn target_ids(&self) -> Result<Vec<u64>, BpfError>;
}

impl FilterMaps for Tracer {
    fn filter_word(&self, word: u32) -> Result<u64, BpfError> {
        self.filter.get(&word, 0).map_err(map_err(maps::FILTER))
    }

    fn set_filter_word(&mut self, word: u32, value: u64) -> Result<(), BpfError> {
        self.filter
            .set(word, value, 0)
            .map_err(map_err(maps::FILTER))
    }

    fn target_ids(&self) -> Result<Vec<u64>, BpfError> {
        self.cgroups()
    }
}

/// The bits of FILTER word `word` that the targets `ids` need set.
fn word_bits(word: u32, ids: impl IntoIterator<Item = u64>) -> u64 {
    ids.into_iter()
        .map(filter_bit)
        .filter(|&(w, _)| w == word)
        .fold(0, |acc, (_, b)| acc | b)
}

/// Rewrites FILTER word `word` as `change` of its value, without losing a bit the kernel sets
/// meanwhile. The kernel sets bits atomically (adopting a new cgroup) between our read and
/// write, where this write can undo them; but it inserts the record before it sets the bit,
/// so reading the records after the write finds every bit lost that way, and it is set again.
/// Until a check finds nothing missing, since a repair is a read and a write too. It ends: a
/// further round needs another adoption into this word within the round.
fn update_filter_word(
    m: &mut impl FilterMaps,
    word: u32,
    change: impl FnOnce(u64) -> u64,
) -> Result<(), BpfError> {
    let value = change(m.filter_word(word)?);
    m.set_filter_word(word, value)?;
    loop {
        let needed = word_bits(word, m.target_ids()?);
        let now = m.filter_word(word)?;
        if now & needed == needed {
            return Ok(());
        }
        m.set_filter_word(word, now | needed)?;
    }
}

/// Reads first-sighting events from the ring buffer.
pub struct EventReader {
    ring: RingBuf<MapData>,
}

impl EventReader {
    /// The next event, if any is queued (never blocks).
    pub fn pop(&mut self) -> Option<Event> {
        loop {
            let item = self.ring.next()?;
            if item.len() < std::mem::size_of::<Event>() {
                continue;
            }
            // SAFETY: the kernel wrote a whole `Event` (length checked above); read_unaligned
            // copes with any alignment of the ring buffer slice.
            return Some(unsafe { std::ptr::read_unaligned(item.as_ptr() as *const Event) });
        }
    }
}

impl AsRawFd for EventReader {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ring.as_raw_fd()
    }
}

/// Whether a map operation failed only because the key is not there: aya reports a lookup's
/// miss as `KeyNotFound` but a delete's as the syscall's ENOENT.
fn absent(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::FILTER_WORDS;

    /// An environment holding `pairs`.
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn test_knobs_size_the_ring_and_targets_and_refuse_what_the_kernel_would() {
        assert!(test_sizes(env(&[])).unwrap().is_empty());
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u32;
        let ring = (page * 4).to_string();
        assert_eq!(
            test_sizes(env(&[(TEST_RING_BYTES, &ring), (TEST_MAX_CGROUPS, "3")])).unwrap(),
            [(maps::EVENTS, page * 4), (maps::TARGETS, 3)]
        );
        let not_a_power_of_two = (page * 3).to_string();
        for (knob, value) in [
            (TEST_RING_BYTES, not_a_power_of_two.as_str()),
            (TEST_RING_BYTES, "64"),
            (TEST_RING_BYTES, "lots"),
            (TEST_MAX_CGROUPS, "0"),
            (TEST_MAX_CGROUPS, "-1"),
        ] {
            let err = test_sizes(env(&[(knob, value)])).unwrap_err().to_string();
            assert!(err.contains(knob), "{err}");
        }
    }

    #[test]
    fn word_bits_are_those_of_the_ids_in_the_word() {
        let span = FILTER_WORDS as u64 * 64;
        // Word 2 holds ids 128..192 (and those a bitmap span away); 64 is word 1.
        let ids = [130, 191, 64, span + 130, span + 129];
        assert_eq!(word_bits(2, ids), 1 << 2 | 1 << 63 | 1 << 1);
        assert_eq!(word_bits(1, ids), 1);
        assert_eq!(word_bits(3, ids), 0);
        assert_eq!(word_bits(2, []), 0);
    }

    /// FILTER word 0 and TARGETS; `adopt` is a cgroup the kernel adopts between user space's
    /// next read and write of the word (the record, then an atomic OR of its bit).
    struct RacingKernel {
        word: u64,
        targets: Vec<u64>,
        adopt: Option<u64>,
    }

    impl FilterMaps for RacingKernel {
        fn filter_word(&self, word: u32) -> Result<u64, BpfError> {
            assert_eq!(word, 0);
            Ok(self.word)
        }

        fn set_filter_word(&mut self, word: u32, value: u64) -> Result<(), BpfError> {
            assert_eq!(word, 0);
            if let Some(id) = self.adopt.take() {
                self.targets.push(id);
                self.word |= filter_bit(id).1;
            }
            self.word = value;
            Ok(())
        }

        fn target_ids(&self) -> Result<Vec<u64>, BpfError> {
            Ok(self.targets.clone())
        }
    }

    #[test]
    fn a_bit_the_kernel_sets_during_an_update_is_kept() {
        // Adding target 1 while the kernel adopts 2.
        let mut m = RacingKernel {
            word: 0,
            targets: vec![1],
            adopt: Some(2),
        };
        update_filter_word(&mut m, 0, |w| w | 1 << 1).unwrap();
        assert_eq!(m.word, 1 << 1 | 1 << 2);

        // Clearing removed target 1 while the kernel adopts 3; 2 stays.
        m.targets.retain(|&t| t != 1);
        m.adopt = Some(3);
        update_filter_word(&mut m, 0, |w| w & !(1 << 1)).unwrap();
        assert_eq!(m.word, 1 << 2 | 1 << 3);
    }
}
