//! Which long-running workers to keep, stop and start when the components change (Kubernetes
//! mode: the operator sent a new set). A worker — a pub/sub subscription, an input binding's
//! reader — runs against one component instance; it is kept when the same thing is still wanted
//! on the same instance (pointer identity), and otherwise stopped, and what is wanted and not
//! kept is started on the current instance. A pure decision, shared by the subscription
//! workers and the input-binding readers.

use std::sync::Arc;

/// What to do with the running workers.
#[derive(Debug, PartialEq)]
pub struct Changes {
    /// Indexes of running workers to stop.
    pub stop: Vec<usize>,
    /// Indexes of wanted workers to start.
    pub start: Vec<usize>,
}

/// `running`: what each worker does and the instance it runs on; `wanted`: what should run and
/// the current instance for it (`None` when the component is not there).
pub fn changes<K: PartialEq>(running: &[(K, usize)], wanted: &[(K, Option<usize>)]) -> Changes {
    let mut kept = vec![false; running.len()];
    let mut start = Vec::new();
    for (index, (what, instance)) in wanted.iter().enumerate() {
        let same = running
            .iter()
            .enumerate()
            .find(|(i, (r, on))| !kept[*i] && r == what && Some(*on) == *instance);
        match same {
            Some((i, _)) => kept[i] = true,
            None => start.push(index),
        }
    }
    let stop = (0..running.len()).filter(|i| !kept[*i]).collect();
    Changes { stop, start }
}

/// The identity of a component instance, for [`changes`].
pub fn instance_id<T: ?Sized>(instance: &Arc<T>) -> usize {
    Arc::as_ptr(instance).cast::<()>() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_worker_on_the_same_instance_keeps_running() {
        let changes = changes(&[("a", 1), ("b", 1)], &[("a", Some(1)), ("b", Some(1))]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![],
                start: vec![]
            }
        );
    }

    #[test]
    fn a_replaced_instance_restarts_its_workers_only() {
        let changes = changes(&[("a", 1), ("b", 2)], &[("a", Some(1)), ("b", Some(3))]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![1],
                start: vec![1]
            }
        );
    }

    #[test]
    fn removed_added_and_edited_workers() {
        let changes = changes(&[("a", 1), ("b", 1)], &[("a2", Some(1)), ("c", Some(1))]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![0, 1],
                start: vec![0, 1]
            }
        );
    }

    #[test]
    fn a_wanted_worker_without_its_component_keeps_nothing_and_is_tried() {
        let changes = changes(&[("a", 1)], &[("a", None)]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![0],
                start: vec![0]
            }
        );
    }

    #[test]
    fn instances_are_told_apart_by_pointer() {
        let (one, two) = (Arc::new(1), Arc::new(1));
        assert_eq!(instance_id(&one), instance_id(&one.clone()));
        assert_ne!(instance_id(&one), instance_id(&two));
    }
}
