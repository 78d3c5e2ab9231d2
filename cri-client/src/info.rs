//! Pure: the verbose `info` of a CRI `ContainerStatus` (a JSON string under the key `info`, in
//! containerd's and CRI-O's shape), reduced to what the tracer needs: the container's init pid
//! its OCI `linux.cgroupsPath`, the seccomp filter in force and its capabilities. Nothing here
//! does I/O.

use std::collections::HashMap;

/// What the verbose info says about a running container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerboseInfo {
    /// The init process's pid in the runtime's (host) pid namespace; None or 0 when not running.
    pub pid: Option<u32>,
    /// `runtimeSpec.linux.cgroupsPath` as the runtime wrote it: `/kubepods/...` with the
    /// cgroupfs driver, `kubepods-...slice:cri-containerd:<id>` with the systemd driver.
    pub cgroups_path: Option<String>,
    /// `runtimeSpec.linux.seccomp` (OCI JSON), the filter the runtime installed; `None`: no
    /// filter (unconfined).
    pub seccomp: Option<String>,
    /// Whether the kubelet asked for a Localhost profile (a file of the node's) rather than the
    /// runtime's default: `config.linux.security_context.seccomp.profile_type` 2, or the older
    /// `seccomp_profile_path: localhost/...`.
    pub seccomp_localhost: bool,
    /// `runtimeSpec.process.capabilities.bounding`.
    pub capabilities: Option<Vec<String>>,
}

/// CRI v1's `SecurityProfile.ProfileType.Localhost` (containerd writes enums as numbers).
const PROFILE_LOCALHOST: u64 = 2;

/// Verbose info that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// The status has no `info` key: the runtime was not asked for (or does not give) it.
    #[error("the container status has no verbose `info`")]
    Missing,
    /// `info` is not the JSON expected.
    #[error("the container status's verbose `info` is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads the verbose `info` map of a `ContainerStatusResponse`.
pub fn parse_verbose_info(info: &HashMap<String, String>) -> Result<VerboseInfo, InfoError> {
    let raw = info.get("info").ok_or(InfoError::Missing)?;
    let v: serde_json::Value = serde_json::from_str(raw)?;
    let pid = v
        .get("pid")
        .and_then(serde_json::Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
        .filter(|&p| p != 0);
    let cgroups_path = v
        .pointer("/runtimeSpec/linux/cgroupsPath")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let seccomp = v
        .pointer("/runtimeSpec/linux/seccomp")
        .filter(|s| s.is_object())
        .map(serde_json::Value::to_string);
    let sc = v.pointer("/config/linux/security_context");
    let by_type = sc
        .and_then(|s| s.pointer("/seccomp/profile_type"))
        .and_then(serde_json::Value::as_u64)
        == Some(PROFILE_LOCALHOST);
    let by_path = sc
        .and_then(|s| s.get("seccomp_profile_path"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|p| p.starts_with("localhost/"));
    let capabilities = v
        .pointer("/runtimeSpec/process/capabilities/bounding")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::to_string)
                .collect()
        });
    Ok(VerboseInfo {
        pid,
        cgroups_path,
        seccomp,
        seccomp_localhost: by_type || by_path,
        capabilities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(json: &str) -> HashMap<String, String> {
        HashMap::from([("info".to_string(), json.to_string())])
    }

    #[test]
    fn containerd_1_6_sample_gives_pid_and_cgroups_path() {
        // Recorded from containerd 1.6.20 (cgroupfs driver, runc) on the test host: a burstable
        // pod's container after one restart.
        let sample = include_str!("../testdata/containerd-1.6.20-container-info.json");
        let got = parse_verbose_info(&info(sample)).unwrap();
        assert_eq!(got.pid, Some(9243));
        assert_eq!(
            got.cgroups_path.as_deref(),
            Some("/kubepods/burstable/pod5e0c0000-0000-4000-8000-dc9cb954d86c/5c6d47e9f5799daf0139a0f0df031b8e731dc9f7340af06bb27feae136d0276c")
        );
    }

    #[test]
    fn a_stopped_container_has_no_pid_and_missing_fields_are_none() {
        let got = parse_verbose_info(&info(
            r#"{"pid":0,"runtimeSpec":{"linux":{"cgroupsPath":""}}}"#,
        ))
        .unwrap();
        assert_eq!(got, VerboseInfo::default());
        let got = parse_verbose_info(&info(
            r#"{"pid":42,"runtimeSpec":{"linux":{"cgroupsPath":"kubepods-besteffort-podX.slice:cri-containerd:abc"}}}"#,
        ))
        .unwrap();
        assert_eq!(got.pid, Some(42));
        assert_eq!(
            got.cgroups_path.as_deref(),
            Some("kubepods-besteffort-podX.slice:cri-containerd:abc")
        );
    }

    #[test]
    fn the_filter_in_force_its_kind_and_the_capabilities() {
        let sample = include_str!("../testdata/containerd-1.6.20-container-info.json");
        let got = parse_verbose_info(&info(sample)).unwrap();
        assert_eq!(got.seccomp, None, "the sample pod is unconfined");
        assert!(!got.seccomp_localhost);
        let caps = got.capabilities.unwrap();
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&"CAP_NET_RAW".to_string()));

        let localhost = r#"{"pid":7,"config":{"linux":{"security_context":{"seccomp":
            {"profile_type":2,"localhost_ref":"/var/lib/kubelet/seccomp/web.json"}}}},
            "runtimeSpec":{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}}"#;
        let got = parse_verbose_info(&info(localhost)).unwrap();
        assert!(got.seccomp_localhost);
        assert_eq!(
            got.seccomp.as_deref(),
            Some(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#)
        );
        // RuntimeDefault is 0, which containerd leaves out.
        let default = r#"{"config":{"linux":{"security_context":{"seccomp":{}}}},
            "runtimeSpec":{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}}"#;
        let got = parse_verbose_info(&info(default)).unwrap();
        assert!(!got.seccomp_localhost && got.seccomp.is_some());
        let old = r#"{"config":{"linux":{"security_context":
            {"seccomp_profile_path":"localhost/web.json"}}}}"#;
        assert!(parse_verbose_info(&info(old)).unwrap().seccomp_localhost);
    }

    #[test]
    fn no_info_or_bad_json_is_an_error() {
        assert!(matches!(
            parse_verbose_info(&HashMap::new()),
            Err(InfoError::Missing)
        ));
        assert!(matches!(
            parse_verbose_info(&info("{not json")),
            Err(InfoError::Json(_))
        ));
    }
}
