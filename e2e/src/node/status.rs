//! The Pod status the node reports, as a pure function of what it sees: phase, addresses, the
//! Ready and ContainersReady conditions the endpoints controller reads, and container statuses.

use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// What the node knows about one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub ready: bool,
    /// `Some(start time)` while it runs.
    pub running_since: Option<String>,
    /// The exit code of the last run, while it is not running.
    pub last_exit: Option<i32>,
    pub restarts: i32,
}

/// Where and since when the pod runs.
#[derive(Clone, Debug, PartialEq)]
pub struct PodView {
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub start_time: String,
    pub containers: Vec<ContainerView>,
    /// The pod is being stopped: it is no longer ready, whatever its containers say.
    pub terminating: bool,
}

/// The `status` of a pod as `view` describes it (for a merge patch of the status subresource).
pub fn pod_status(view: &PodView) -> Value {
    let all_ready =
        !view.containers.is_empty() && view.containers.iter().all(|c| c.ready) && !view.terminating;
    let flag = |on: bool| if on { "True" } else { "False" };
    let containers: Vec<Value> = view
        .containers
        .iter()
        .map(|c| {
            let state = match (&c.running_since, c.last_exit) {
                (Some(since), _) => json!({"running": {"startedAt": since}}),
                (None, Some(code)) => json!({"terminated": {"exitCode": code}}),
                (None, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            json!({
                "name": c.name,
                "image": c.image,
                "imageID": "",
                "ready": c.ready && !view.terminating,
                "started": c.running_since.is_some(),
                "restartCount": c.restarts,
                "state": state,
            })
        })
        .collect();
    json!({
        "phase": "Running",
        "hostIP": view.host_ip.to_string(),
        "podIP": view.pod_ip.to_string(),
        "podIPs": [{"ip": view.pod_ip.to_string()}],
        "startTime": view.start_time,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": flag(all_ready)},
            {"type": "Ready", "status": flag(all_ready)},
        ],
        "containerStatuses": containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(ready: [bool; 2], terminating: bool) -> PodView {
        let container = |name: &str, ready: bool| ContainerView {
            name: name.into(),
            image: format!("{name}:1"),
            ready,
            running_since: Some("2026-01-01T00:00:00Z".into()),
            last_exit: None,
            restarts: 0,
        };
        PodView {
            pod_ip: Ipv4Addr::new(10, 9, 9, 2),
            host_ip: Ipv4Addr::new(10, 9, 9, 1),
            start_time: "2026-01-01T00:00:00Z".into(),
            containers: vec![container("app", ready[0]), container("daprd", ready[1])],
            terminating,
        }
    }

    fn condition(status: &Value, kind: &str) -> String {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind)
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn the_pod_is_ready_when_every_container_is_and_it_is_not_stopping() {
        let status = pod_status(&view([true, true], false));
        assert_eq!(condition(&status, "Ready"), "True");
        assert_eq!(status["podIP"], "10.9.9.2");
        assert_eq!(
            status["containerStatuses"][1]["state"]["running"]["startedAt"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            condition(&pod_status(&view([true, false], false)), "Ready"),
            "False"
        );
        let stopping = pod_status(&view([true, true], true));
        assert_eq!(condition(&stopping, "Ready"), "False");
        assert_eq!(stopping["containerStatuses"][0]["ready"], false);
    }

    #[test]
    fn an_exited_container_shows_its_exit_code_and_restarts() {
        let mut exited = view([false, true], false);
        exited.containers[0].running_since = None;
        exited.containers[0].last_exit = Some(3);
        exited.containers[0].restarts = 2;
        let status = pod_status(&exited);
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(status["containerStatuses"][0]["restartCount"], 2);
    }
}
