//! The kernel/user contract checked against the built object (`crate::EBPF_OBJECT`), parsed
//! as the loader would, without loading it: the maps are exactly `tracer_common::maps::ALL`
//! (so every map is pinned), the programs exactly `programs::ALL`, and every global the
//! loader writes exists with the size it is written with.

use std::collections::{BTreeSet, HashMap};

use aya::Pod;
use aya_obj::{EbpfSectionKind, Object};
use tracer_common::{globals, maps, programs};

use super::layout::{GlobalSink, KernelLayout};

fn object() -> Object {
    Object::parse(crate::EBPF_OBJECT).expect("the built kernel object parses")
}

fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    names.into_iter().collect()
}

#[test]
fn the_object_has_exactly_the_maps_user_space_names_and_pins() {
    let obj = object();
    let in_object = set(obj
        .maps
        .iter()
        // .rodata and the like hold globals; they are not maps of ours.
        .filter(|(_, m)| {
            matches!(
                m.section_kind(),
                EbpfSectionKind::Maps | EbpfSectionKind::BtfMaps
            )
        })
        .map(|(name, _)| name.as_str()));
    assert_eq!(
        in_object,
        set(maps::ALL),
        "maps of the kernel object (left) and tracer_common::maps::ALL (right) differ"
    );
}

#[test]
fn the_object_has_exactly_the_programs_user_space_names() {
    let obj = object();
    assert_eq!(
        set(obj.programs.keys().map(String::as_str)),
        set(programs::ALL),
        "programs of the kernel object (left) and tracer_common::programs::ALL (right) differ"
    );
}

/// The name and size of each global handed to it.
struct Sizes(Vec<(&'static str, usize)>);

impl<'a> GlobalSink<'a> for Sizes {
    fn global<T: Pod>(&mut self, name: &'static str, _: &'a T) {
        self.0.push((name, std::mem::size_of::<T>()));
    }
}

#[test]
fn every_global_the_loader_writes_exists_with_its_size() {
    let layout = KernelLayout {
        seccomp_mode: 0,
        regs_nr: 0,
        regs_arg0: 0,
        compat_offset: 0,
        compat_mask: 0,
        arg_nrs: [0; tracer_common::arg_call::COUNT],
        install_nrs: [0; 4],
        mkdir_root: 0,
        mkdir_id: 0,
        mkdir_path: 0,
        mkdir_level: 0,
        cgroup_chain: [0; 4],
        cgroup_parent: [0; 2],
        task_pid: 0,
        task_tgid: 0,
        regs_cx: 0,
        regs_ip: 0,
    };
    let mut written = Sizes(Vec::new());
    layout.write_globals(&0, &mut written);
    assert_eq!(set(written.0.iter().map(|(n, _)| *n)), set(globals::ALL));
    assert_eq!(
        written.0.len(),
        globals::ALL.len(),
        "a global written twice"
    );

    // What the loader does with them: a name missing from the object, or a size that differs
    // from the symbol's, is an error.
    let zeros: Vec<(&str, Vec<u8>)> = written.0.iter().map(|&(n, s)| (n, vec![0; s])).collect();
    let patch: HashMap<&str, (&[u8], bool)> = zeros
        .iter()
        .map(|(n, z)| (*n, (z.as_slice(), true)))
        .collect();
    let mut obj = object();
    if let Err(e) = obj.patch_map_data(patch) {
        panic!("the loader's globals do not match the object: {e}");
    }
}
