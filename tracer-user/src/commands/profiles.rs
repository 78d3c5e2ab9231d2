//! `merge`, `diff` and `explain`: profile files in, a profile or a report out.

use std::{path::Path, process::ExitCode};

use anyhow::bail;

use crate::{
    privileges::{self, KernelVersion},
    profile::{
        formats::{self, escape, Format, Parsed},
        moby::Host,
    },
    profiles,
    record::{
        display,
        sink::{self, Rendered},
    },
    syscalls::Arch,
};

/// The architecture of the profiles in `loaded` (from `paths`): see [`formats::common_arch`].
fn arch_of(paths: &[std::path::PathBuf], loaded: &[Parsed]) -> anyhow::Result<Arch> {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let inputs = names
        .iter()
        .zip(loaded)
        .map(|(n, p)| (n.as_str(), p.arches.as_slice()));
    Ok(formats::common_arch(inputs, Arch::host())?)
}

/// `merge`: the union of `paths` in `output` (format: `format`, or the first profile's), for
/// the architecture of the inputs. A profile that allows every call it does not list
/// (defaultAction SCMP_ACT_ALLOW) is refused: the union would allow everything too.
pub fn merge(
    paths: &[std::path::PathBuf],
    output: &Path,
    format: Option<Format>,
) -> anyhow::Result<ExitCode> {
    let mut loaded = Vec::new();
    for p in paths {
        let parsed = profiles::load_parsed(p)?;
        if parsed.profile.permissive {
            bail!(
                "{} allows every call it does not list (defaultAction SCMP_ACT_ALLOW): a union \
                 with it would too; merge takes profiles that list what they allow",
                escape(&p.display().to_string())
            );
        }
        loaded.push(parsed);
    }
    let Some(first) = loaded.first() else {
        bail!("no profile to merge");
    };
    let format = format.unwrap_or(first.format);
    let arch = arch_of(paths, &loaded)?;
    let merged = formats::merge(loaded.iter().map(|p| &p.profile));
    let name = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    sink::write(output, &Rendered::new(format, arch, &name, &merged))?;
    display::print(&format!(
        "{}: {} syscalls allowed (union of {} profiles)\n",
        output.display(),
        merged.allowed.len(),
        paths.len()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `diff`: what one profile allows that the other does not, in words or as one JSON object
/// ([`profiles::ProfileDiff`]). Exits 0 either way, different or not.
pub fn diff(a: &Path, b: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (_, pa) = profiles::load(a)?;
    let (_, pb) = profiles::load(b)?;
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let out = if json {
        let mut s = serde_json::to_string_pretty(&profiles::differences(&pa, &pb, &a, &b))?;
        s.push('\n');
        s
    } else {
        profiles::diff(&pa, &pb, &a, &b)
    };
    display::print(&out);
    Ok(ExitCode::SUCCESS)
}

/// `explain`: a profile against Docker's default, on the architecture the profile is for and
/// this host's kernel (or `kernel`), in words or as JSON.
pub fn explain(
    profile: &Path,
    json: bool,
    kernel: Option<KernelVersion>,
) -> anyhow::Result<ExitCode> {
    let parsed = profiles::load_parsed(profile)?;
    let arch = arch_of(&[profile.to_path_buf()], std::slice::from_ref(&parsed))?;
    let kernel = kernel
        .or_else(privileges::running_kernel)
        .ok_or_else(|| anyhow::anyhow!("cannot tell the kernel's version: give --kernel"))?;
    let host = Host { arch, kernel };
    let p = parsed.profile;
    let name = profile.display().to_string();
    let out = if json {
        let mut s = serde_json::to_string_pretty(&profiles::explained(&p, host, &name)?)?;
        s.push('\n');
        s
    } else {
        let why = profiles::load_why(profile);
        profiles::explain(&p, host, &name, why.as_ref())?
    };
    display::print(&out);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use super::*;
    use crate::profile::formats::Profile;

    fn profile(names: &[&str]) -> Profile {
        Profile {
            allowed: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// `doc` written as `name` in `dir`.
    fn file(dir: &Path, name: &str, doc: &Value) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_vec(doc).unwrap()).unwrap();
        p
    }

    fn read(p: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn merge_keeps_the_architecture_of_its_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Not the host's architecture (on either kind of host).
        let other = match Arch::host() {
            Some(Arch::Aarch64) => Arch::X86_64,
            _ => Arch::Aarch64,
        };
        let (main, subs) = other.docker_arches();
        let a = file(
            d,
            "a.json",
            &formats::render(Format::Oci, other, "a", &profile(&["read"])),
        );
        let b = file(
            d,
            "b.json",
            &formats::render(Format::Docker, other, "b", &profile(&["write"])),
        );
        let out = d.join("m.json");
        merge(&[a.clone(), b], &out, Some(Format::Oci)).unwrap();
        let mut expected = vec![main];
        expected.extend(subs);
        assert_eq!(read(&out)["architectures"], json!(expected));
        // Profiles of two architectures: refused, in one line.
        let mine = if other == Arch::X86_64 {
            Arch::Aarch64
        } else {
            Arch::X86_64
        };
        let c = file(
            d,
            "c.json",
            &formats::render(Format::Oci, mine, "c", &profile(&["read"])),
        );
        let err = merge(&[a, c], &d.join("n.json"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("profiles of different architectures cannot be merged"),
            "{err}"
        );
        assert!(!err.contains('\n') && !d.join("n.json").exists(), "{err}");
    }

    #[test]
    fn explain_takes_the_architecture_of_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let doc = formats::render(Format::Docker, Arch::Aarch64, "a", &profile(&["read"]));
        let p = file(dir.path(), "a.json", &doc);
        let parsed = profiles::read(&p, Arch::X86_64).unwrap();
        assert_eq!(arch_of(&[p], &[parsed]).unwrap(), Arch::Aarch64);
    }

    #[test]
    fn merge_refuses_a_profile_that_allows_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let learned = file(
            d,
            "l.json",
            &formats::render(Format::Oci, Arch::X86_64, "l", &profile(&["read"])),
        );
        let allow = file(
            d,
            "allow.json",
            &json!({ "defaultAction": "SCMP_ACT_ALLOW",
                     "syscalls": [{ "names": ["ptrace"], "action": "SCMP_ACT_ERRNO" }] }),
        );
        let out = d.join("m.json");
        let err = merge(&[learned, allow], &out, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("allow.json allows every call it does not list"),
            "{err}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn merge_as_kubernetes_writes_the_kubelet_file_and_yaml_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let a = file(
            d,
            "a.json",
            &formats::render(Format::Docker, Arch::X86_64, "a", &profile(&["read"])),
        );
        let b = file(
            d,
            "b.json",
            &formats::render(Format::Oci, Arch::X86_64, "b", &profile(&["write"])),
        );
        for out in ["web.json", "web.yaml"] {
            let out = d.join(out);
            merge(&[a.clone(), b.clone()], &out, Some(Format::Kubernetes)).unwrap();
            let kubelet = read(&d.join("web.kubelet.json"));
            assert_eq!(kubelet["syscalls"][0]["names"], json!(["read", "write"]));
            assert!(kubelet.get("archMap").is_none() && kubelet.get("architectures").is_some());
            let back = profiles::read(&out, Arch::X86_64).unwrap();
            assert_eq!(back.format, Format::Kubernetes);
            assert_eq!(back.profile, profile(&["read", "write"]));
            std::fs::remove_file(d.join("web.kubelet.json")).unwrap();
        }
        assert!(std::fs::read_to_string(d.join("web.yaml"))
            .unwrap()
            .starts_with("apiVersion:"));
    }
}
