//! Pure: the "how to use it" lines of a report: the exact `docker run`, `podman run` and
//! Kubernetes steps for its profile (for a daemon's target, the `export` that writes it
//! first). Plain text; the page escapes it. Nothing here does I/O.

use std::path::{Path, PathBuf};

use super::html::shell_word;
use crate::profile::formats::{kubelet_path, Format};

/// Where the kubelet reads Localhost profiles, and the directory this project's DaemonSet
/// exports to (contrib/kubernetes).
pub const KUBELET_SECCOMP_DIR: &str = "/var/lib/kubelet/seccomp";
pub const KUBELET_SUBDIR: &str = "seccomp-tracer";

/// What the report was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A profile file (its absolute path) in `format`.
    File { path: PathBuf, format: Format },
    /// A container the daemon records; `socket` when it is not the default one, `dir` the
    /// directory files are exported to (the current one).
    Daemon {
        container: String,
        socket: Option<PathBuf>,
        dir: PathBuf,
    },
}

/// One step: what it is for, and the lines to type (or paste).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub title: &'static str,
    pub note: Option<String>,
    pub lines: Vec<String>,
}

/// A file name from a container's name: `ns/pod/ctr` -> `ns-pod-ctr`.
pub fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['.', '-']).to_string();
    if s.is_empty() {
        "profile".into()
    } else {
        s
    }
}

fn q(p: &Path) -> String {
    shell_word(&p.display().to_string())
}

/// The steps for the profile `source` describes.
pub fn steps(source: &Source) -> Vec<Step> {
    let mut out = Vec::new();
    // Converting for the kubelet, when the profile is not in a form it takes.
    let mut convert = None;
    // The file Docker and Podman take, the one the kubelet takes, and how each comes to be.
    let (docker_file, kubelet_file, stem) = match source {
        Source::File { path, format } => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "profile".into());
            match format {
                Format::Kubernetes => {
                    let k = kubelet_path(path);
                    (k.clone(), k, stem)
                }
                Format::Oci => (path.clone(), path.clone(), stem),
                Format::Docker => {
                    let k = path.with_file_name(format!("{stem}.kubelet.json"));
                    convert = Some(Step {
                        title: "For Kubernetes, the OCI form first",
                        note: Some(
                            "containerd reads a Localhost profile into the OCI type, which has no \
                             archMap: write the same calls in the OCI form (a union of the \
                             profile with itself)"
                                .into(),
                        ),
                        lines: vec![format!(
                            "seccomp-tracer merge {p} {p} --format oci -o {}",
                            q(&k),
                            p = q(path)
                        )],
                    });
                    (path.clone(), k, stem)
                }
            }
        }
        Source::Daemon {
            container,
            socket,
            dir,
        } => {
            let stem = file_stem(container);
            let docker = dir.join(format!("{stem}.json"));
            let yaml = dir.join(format!("{stem}.yaml"));
            let sock = socket
                .as_ref()
                .map(|s| format!(" --socket {}", q(s)))
                .unwrap_or_default();
            let c = shell_word(container);
            out.push(Step {
                title: "Export the profile as it stands (recording goes on)",
                note: Some(format!(
                    "the second line also writes {stem}.kubelet.json, the kubelet's file"
                )),
                lines: vec![
                    format!("seccomp-tracer export {c} -o {}{sock}", q(&docker)),
                    format!(
                        "seccomp-tracer export {c} --format kubernetes -o {}{sock}",
                        q(&yaml)
                    ),
                ],
            });
            (docker, kubelet_path(&yaml), stem)
        }
    };
    out.push(Step {
        title: "Docker",
        note: None,
        lines: vec![format!(
            "docker run --security-opt seccomp={} IMAGE",
            q(&docker_file)
        )],
    });
    out.push(Step {
        title: "Podman",
        note: None,
        lines: vec![format!(
            "podman run --security-opt seccomp={} IMAGE",
            q(&docker_file)
        )],
    });
    out.extend(convert);
    let name = format!("{stem}.kubelet.json");
    let local = format!("{KUBELET_SUBDIR}/{name}");
    let dest = format!("{KUBELET_SECCOMP_DIR}/{local}");
    out.push(Step {
        title: "Kubernetes (Localhost profile; on every node that may run the pod)",
        note: Some(
            "copy the kubelet's file where the kubelet reads Localhost profiles, then name it \
             in the pod's (or a container's) securityContext:"
                .into(),
        ),
        lines: vec![
            format!("mkdir -p {KUBELET_SECCOMP_DIR}/{KUBELET_SUBDIR}"),
            format!("cp {} {}", q(&kubelet_file), shell_word(&dest)),
            "securityContext:".into(),
            "  seccompProfile:".into(),
            "    type: Localhost".into(),
            format!("    localhostProfile: {}", yaml_str(&local)),
        ],
    });
    out
}

/// `s` as a YAML scalar: plain when safe, else double-quoted JSON-style.
fn yaml_str(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        s.into()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(steps: &[Step]) -> String {
        steps
            .iter()
            .flat_map(|s| s.lines.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_docker_profile_file_is_used_as_it_is() {
        let s = all(&steps(&Source::File {
            path: "/srv/p/web.json".into(),
            format: Format::Docker,
        }));
        assert!(s.contains("docker run --security-opt seccomp=/srv/p/web.json IMAGE"));
        assert!(s.contains("podman run --security-opt seccomp=/srv/p/web.json IMAGE"));
        assert!(s.contains(
            "seccomp-tracer merge /srv/p/web.json /srv/p/web.json --format oci -o \
             /srv/p/web.kubelet.json"
        ));
        assert!(s.contains(
            "cp /srv/p/web.kubelet.json /var/lib/kubelet/seccomp/seccomp-tracer/web.kubelet.json"
        ));
        assert!(
            s.contains("localhostProfile: seccomp-tracer/web.kubelet.json"),
            "{s}"
        );
    }

    #[test]
    fn a_kubernetes_profile_uses_its_kubelet_file() {
        let s = all(&steps(&Source::File {
            path: "/srv/web.yaml".into(),
            format: Format::Kubernetes,
        }));
        assert!(s.contains("seccomp=/srv/web.kubelet.json IMAGE"), "{s}");
        assert!(!s.contains("merge"), "{s}");
    }

    #[test]
    fn a_daemon_target_is_exported_first_and_odd_names_are_quoted() {
        let s = all(&steps(&Source::Daemon {
            container: "default/web-1/nginx".into(),
            socket: Some("/tmp/my sock".into()),
            dir: "/root".into(),
        }));
        assert!(s.contains(
            "seccomp-tracer export default/web-1/nginx -o /root/default-web-1-nginx.json \
             --socket '/tmp/my sock'"
        ));
        assert!(
            s.contains("seccomp=/root/default-web-1-nginx.json IMAGE"),
            "{s}"
        );
        assert!(
            s.contains("cp /root/default-web-1-nginx.kubelet.json "),
            "{s}"
        );
        let s = all(&steps(&Source::Daemon {
            container: "$(x)".into(),
            socket: None,
            dir: "/d".into(),
        }));
        assert!(s.contains("export '$(x)' -o /d/x-.json\n"), "{s}");
    }

    #[test]
    fn file_stems_are_plain() {
        assert_eq!(file_stem("web"), "web");
        assert_eq!(file_stem("ns/pod/ctr"), "ns-pod-ctr");
        assert_eq!(file_stem("../.."), "profile");
        assert_eq!(file_stem("<x>"), "x-");
    }
}
