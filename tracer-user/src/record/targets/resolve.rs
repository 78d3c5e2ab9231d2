//! Resolving what the user named (a container, a cgroup, a process) into a target with its
//! current cgroup path.

use super::{label_of, Target};
use crate::{
    kernel::Cgroups,
    record::RecordError,
    target::{
        engine::{EngineClient, Layout},
        TargetError, TargetSpec,
    },
};

/// The target `spec` names, as it is now. `label` overrides its name; with `wait`, a container
/// or cgroup that does not exist or run yet is recorded from its creation.
pub async fn resolve(
    spec: &TargetSpec,
    label: Option<&str>,
    wait: bool,
    cg: &dyn Cgroups,
    engine: Option<(&EngineClient, Layout)>,
) -> Result<Target, RecordError> {
    let t = Target::new(
        spec.clone(),
        label.map_or_else(|| label_of(spec), String::from),
    );
    match spec {
        TargetSpec::Container(name) => {
            let Some((client, layout)) = engine else {
                return Err(TargetError::EngineUnreachable("no engine".into()).into());
            };
            match client.find(name).await? {
                Some(c) => {
                    let path = match (c.cgroup.clone(), c.pid) {
                        // What the engine says (the CRI), rather than what /proc says in this
                        // process's cgroup namespace (a DaemonSet's own).
                        (Some(path), _) => path,
                        (None, Some(pid)) => cg.pid_path(pid)?,
                        (None, None) if wait => layout.container_path(&c.id, None),
                        (None, None) => return Err(TargetError::NotRunning(c.name).into()),
                    };
                    Ok(t.with_container(c.name, c.id, path, c.pid.is_some())
                        .with_security(c.security))
                }
                None if wait => Ok(t),
                None => Err(TargetError::NoContainer {
                    name: name.clone(),
                    running: client.running_names().await,
                }
                .into()),
            }
        }
        TargetSpec::Cgroup(given) => {
            let rel = cg.relative(given);
            if !wait {
                cg.id_of(&rel)?;
            }
            Ok(t.with_path(rel))
        }
        TargetSpec::Pid(pid) => Ok(t.with_path(cg.pid_path(*pid)?)),
    }
}
