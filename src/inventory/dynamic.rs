//! Hosts and groups made during a run (`add_host`, `group_by`): the inventory the plays after
//! them are planned with. Ansible changes its one in-memory inventory as the tasks run; prov
//! plans each part of a playbook up front, so these are applied between the parts.

use super::*;

impl Inventory {
    /// Adds `name` (if new) with `vars` over its own variables, and puts it into `groups`
    /// (made if new, under `all`). Says whether anything changed.
    pub fn add_host(&mut self, name: &str, groups: &[String], vars: &Vars) -> bool {
        let mut changed = false;
        let hi = match self.host_idx.get(name) {
            Some(&h) => h,
            None => {
                changed = true;
                self.hosts.push(Host {
                    name: name.to_string(),
                    vars: Vars::new(),
                    span: Span::none("add_host"),
                    source: None,
                });
                self.host_idx.insert(name.to_string(), self.hosts.len() - 1);
                self.groups[UNGROUPED].hosts.push(self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        for (k, v) in vars {
            if self.hosts[hi].vars.get(k) != Some(v) {
                self.hosts[hi].vars.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for g in groups {
            changed |= self.put_in_group(hi, g);
        }
        if changed {
            self.compute_host_groups();
        }
        changed
    }

    /// Puts every host of `members` that the inventory has into `group` (`group_by`'s groups,
    /// made during the part of the run before).
    pub fn join_group(&mut self, group: &str, members: &[String]) {
        let his: Vec<usize> = members
            .iter()
            .filter_map(|h| self.host_idx.get(h).copied())
            .collect();
        for hi in his {
            self.put_in_group(hi, group);
        }
        self.compute_host_groups();
    }

    /// Makes `host` a direct member of `group` (a new group goes under `all`); a host in a
    /// real group is no longer `ungrouped`. Says whether it was not a member yet.
    fn put_in_group(&mut self, host: usize, group: &str) -> bool {
        let gi = match self.group_idx.get(group) {
            Some(&g) => g,
            None => {
                let g = self.groups.len();
                let mut made = Group::new(group, None, true);
                made.parents.push(ALL);
                made.depth = 1;
                self.groups.push(made);
                self.groups[ALL].children.push(g);
                self.group_idx.insert(group.to_string(), g);
                g
            }
        };
        if gi == ALL || self.groups[gi].hosts.contains(&host) {
            return false;
        }
        self.groups[gi].hosts.push(host);
        if gi != UNGROUPED {
            self.groups[UNGROUPED].hosts.retain(|&h| h != host);
        }
        true
    }
}

/// `host:port` (or `[v6]:port`) as `add_host` reads its name: the host and its port, or `None`
/// when the name carries no port (a bare IPv6 address keeps its colons). A name that does not
/// parse is used as it is, as Ansible does.
pub fn split_host_port(name: &str) -> Option<(String, u16)> {
    match build::split_port(name) {
        Ok((host, Some(port))) => Some((host.to_string(), port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inv() -> Inventory {
        let mut b = Builder::new();
        let span = Span::none("test");
        let web = b.group("web", &span, true);
        b.host("w1", &span, web, None);
        b.finish();
        let mut inv = b.inv;
        inv.compute_host_groups();
        inv
    }

    #[test]
    fn a_new_host_joins_its_groups_and_leaves_ungrouped() {
        let mut inv = inv();
        let vars: Vars = json!({"ansible_host": "10.0.0.9"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(inv.add_host("new1", &["fresh".into(), "web".into()], &vars));
        assert_eq!(inv.select("fresh").unwrap(), vec!["new1"]);
        assert_eq!(inv.select("web").unwrap(), vec!["w1", "new1"]);
        assert!(inv.select("ungrouped").is_ok_and(|h| h.is_empty()));
        assert_eq!(inv.host_vars("new1")["ansible_host"], json!("10.0.0.9"));
        assert_eq!(inv.group_names("new1"), vec!["fresh", "web"]);
        // The same again changes nothing.
        assert!(!inv.add_host("new1", &["fresh".into()], &vars));
    }

    #[test]
    fn a_host_without_groups_is_ungrouped_and_a_known_one_gets_new_vars() {
        let mut inv = inv();
        assert!(inv.add_host("lone", &[], &Vars::new()));
        assert_eq!(inv.select("ungrouped").unwrap(), vec!["lone"]);
        let vars: Vars = json!({"role": "db"}).as_object().cloned().unwrap();
        assert!(inv.add_host("w1", &[], &vars));
        assert_eq!(inv.host_vars("w1")["role"], json!("db"));
    }

    #[test]
    fn a_port_is_split_off_the_name() {
        assert_eq!(split_host_port("db:2222"), Some(("db".into(), 2222)));
        assert_eq!(
            split_host_port("[2001:db8::1]:22"),
            Some(("2001:db8::1".into(), 22))
        );
        assert_eq!(split_host_port("2001:db8::1"), None);
        assert_eq!(split_host_port("db"), None);
    }

    #[test]
    fn group_by_groups_are_carried_as_groups() {
        let mut inv = inv();
        inv.join_group("os_Debian", &["w1".into(), "gone".into()]);
        assert_eq!(inv.select("os_Debian").unwrap(), vec!["w1"]);
    }
}
