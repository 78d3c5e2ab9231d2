//! Pure: just enough of a BTF reader to find the byte offset of a struct member on the running
//! kernel (`task_struct.seccomp.mode`, `pt_regs.orig_ax`), so the kernel programs read the
//! right field without CO-RE.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("BTF data is truncated or malformed")]
    Malformed,
    #[error("not BTF data (bad magic)")]
    BadMagic,
    #[error("struct `{0}` not found in the kernel's BTF")]
    NoStruct(String),
    #[error("member `{member}` not found in struct `{owner}`")]
    NoMember { owner: String, member: String },
    #[error("member `{0}` is a bitfield")]
    Bitfield(String),
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Debug)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
    bitfield: bool,
}

#[derive(Clone, Debug)]
struct Type {
    name_off: u32,
    kind: u32,
    /// Referenced type for typedef/const/volatile/...
    type_ref: u32,
    members: Vec<Member>,
}

/// Parsed BTF types (only what member lookups need).
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

fn u32_at(data: &[u8], off: usize) -> Result<u32, BtfError> {
    let b = data.get(off..off + 4).ok_or(BtfError::Malformed)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    /// Parses little-endian BTF (as in `/sys/kernel/btf/vmlinux` on x86_64 and arm64).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 {
            return Err(BtfError::Malformed);
        }
        if u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(BtfError::BadMagic);
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed)?
            .to_vec();
        if types_end > data.len() {
            return Err(BtfError::Malformed);
        }
        // Type id 0 is "void".
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            type_ref: 0,
            members: Vec::new(),
        }];
        let mut off = types_start;
        while off < types_end {
            let name_off = u32_at(data, off)?;
            let info = u32_at(data, off + 4)?;
            let size_or_type = u32_at(data, off + 8)?;
            off += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => off += 4,
                KIND_ARRAY => off += 12,
                KIND_STRUCT | KIND_UNION => {
                    for _ in 0..vlen {
                        let raw = u32_at(data, off + 8)?;
                        let (bit_offset, bitfield) = if kind_flag {
                            (raw & 0xff_ffff, raw >> 24 != 0)
                        } else {
                            (raw, false)
                        };
                        members.push(Member {
                            name_off: u32_at(data, off)?,
                            type_id: u32_at(data, off + 4)?,
                            bit_offset,
                            bitfield,
                        });
                        off += 12;
                    }
                }
                KIND_ENUM | KIND_FUNC_PROTO => off += 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => off += 12 * vlen,
                _ => {}
            }
            types.push(Type {
                name_off,
                kind,
                type_ref: size_or_type,
                members,
            });
        }
        Ok(Self { types, strings })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Follows typedef/const/volatile/... to the underlying type id.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.type_ref
                }
                _ => break,
            }
        }
        id
    }

    /// Bit offset of `member` in the struct/union `id`, searching anonymous members too.
    fn member_in(&self, id: u32, member: &str) -> Option<(u32, u32, bool)> {
        let t = self.types.get(self.resolve(id) as usize)?;
        for m in &t.members {
            let name = self.name(m.name_off);
            if name == member.as_bytes() {
                return Some((m.bit_offset, m.type_id, m.bitfield));
            }
            if name.is_empty() {
                if let Some((off, ty, bf)) = self.member_in(m.type_id, member) {
                    return Some((m.bit_offset + off, ty, bf));
                }
            }
        }
        None
    }

    /// Byte offset of `path` (e.g. `["seccomp", "mode"]`) inside struct `name`.
    pub fn member_offset(&self, name: &str, path: &[&str]) -> Result<u32, BtfError> {
        let mut id = self
            .types
            .iter()
            .position(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == name.as_bytes())
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))? as u32;
        let mut owner = name.to_string();
        let mut bits = 0;
        for &member in path {
            let (off, ty, bitfield) =
                self.member_in(id, member)
                    .ok_or_else(|| BtfError::NoMember {
                        owner: owner.clone(),
                        member: member.to_string(),
                    })?;
            if bitfield {
                return Err(BtfError::Bitfield(member.to_string()));
            }
            bits += off;
            id = ty;
            owner = member.to_string();
        }
        Ok(bits / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF for: struct inner { int a; int mode; }; struct outer { long x; struct inner s; };
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0inner\0a\0mode\0outer\0x\0s\0long\0".to_vec();
        let s = |name: &str| {
            let pos = strings
                .windows(name.len() + 2)
                .position(|w| {
                    w[0] == 0 && &w[1..=name.len()] == name.as_bytes() && w[name.len() + 1] == 0
                })
                .unwrap();
            (pos + 1) as u32
        };
        let mut types = Vec::new();
        let mut push = |words: &[u32]| words.iter().for_each(|w| types.extend(w.to_le_bytes()));
        // 1: int
        push(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: long
        push(&[s("long"), KIND_INT << 24, 8, 64]);
        // 3: struct inner { int a; int mode; }
        push(&[s("inner"), KIND_STRUCT << 24 | 2, 8]);
        push(&[s("a"), 1, 0]);
        push(&[s("mode"), 1, 32]);
        // 4: struct outer { long x; struct inner s; }
        push(&[s("outer"), KIND_STRUCT << 24 | 2, 16]);
        push(&[s("x"), 2, 0]);
        push(&[s("s"), 3, 64]);
        let mut data = Vec::new();
        data.extend(0xeb9fu16.to_le_bytes());
        data.extend([1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            data.extend(w.to_le_bytes());
        }
        data.extend(types);
        data.extend(strings);
        data
    }

    #[test]
    fn nested_member_offset() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.member_offset("outer", &["s", "mode"]).unwrap(), 12);
        assert_eq!(btf.member_offset("outer", &["x"]).unwrap(), 0);
        assert!(matches!(
            btf.member_offset("outer", &["nope"]),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", &[]),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(Btf::parse(&[0u8; 40]), Err(BtfError::BadMagic)));
        assert!(matches!(Btf::parse(&[0u8; 3]), Err(BtfError::Malformed)));
    }

    /// The running kernel's BTF is world-readable, so this needs no root.
    #[test]
    fn running_kernel_has_the_fields_we_read() {
        let data = match std::fs::read("/sys/kernel/btf/vmlinux") {
            Ok(d) => d,
            // A developer's build host may lack BTF; CI must not.
            Err(e) if std::env::var_os("CI").is_some() => panic!("no kernel BTF under CI: {e}"),
            Err(_) => return,
        };
        let btf = Btf::parse(&data).unwrap();
        let off = btf
            .member_offset("task_struct", &["seccomp", "mode"])
            .unwrap();
        assert!(off > 0);
        // The step from a cgroup to its parent (subtree tracing).
        btf.member_offset("cgroup", &["self", "parent"]).unwrap();
        btf.member_offset("cgroup_subsys_state", &["cgroup"])
            .unwrap();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(btf.member_offset("pt_regs", &["orig_ax"]).unwrap(), 120);
    }
}
