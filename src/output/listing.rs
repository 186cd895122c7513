//! `prov apply --list-hosts | --list-tasks | --list-tags`: what a playbook would touch, laid
//! out as `ansible-playbook` lays it out, without contacting any host.

use crate::app::Loaded;
use crate::playbook::{Task, TaskAction};
use std::collections::BTreeSet;

/// What to list (any of them, in `ansible-playbook`'s order).
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing {
    pub hosts: bool,
    pub tasks: bool,
    pub tags: bool,
}

/// The listing of a loaded playbook (tasks after `--tags`/`--skip-tags`, hosts after
/// `--limit`). The tasks of a runtime include are not known before the run: the include is
/// listed, as Ansible lists it.
pub fn render(l: &Loaded, what: Listing) -> String {
    let mut out = format!("\nplaybook: {}\n", l.pb.path.display());
    for (i, play) in l.pb.plays.iter().enumerate() {
        let name = if play.name.is_empty() {
            &play.hosts
        } else {
            &play.name
        };
        out.push_str(&format!(
            "\n  play #{} ({}): {name}\tTAGS: [{}]\n",
            i + 1,
            play.hosts,
            play.tags.join(",")
        ));
        let selected: Vec<&Task> = play
            .tasks
            .iter()
            .filter(|t| {
                !matches!(t.action, TaskAction::FlushHandlers)
                    && t.frames.is_empty()
                    && l.plan.tags.selects(t)
            })
            .collect();
        if what.hosts {
            let hosts = &l.plan.play_hosts_listed[i];
            out.push_str(&format!("    pattern: ['{}']\n", play.hosts));
            out.push_str(&format!("    hosts ({}):\n", hosts.len()));
            for h in hosts {
                out.push_str(&format!("      {h}\n"));
            }
        }
        if what.tasks {
            out.push_str("    tasks:\n");
            for t in &selected {
                let tags: BTreeSet<&str> = t.tags.iter().map(String::as_str).collect();
                out.push_str(&format!(
                    "      {}\tTAGS: [{}]\n",
                    t.display_name(),
                    tags.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if what.tags {
            let tags: BTreeSet<&str> = selected
                .iter()
                .flat_map(|t| t.tags.iter().map(String::as_str))
                .collect();
            out.push_str(&format!(
                "      TASK TAGS: [{}]\n",
                tags.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out
}
