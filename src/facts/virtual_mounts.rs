//! Facts that popular roles test in conditions and that the script reads from `/proc` and
//! `/sys`: `virtualization_type`/`virtualization_role` (and the `tech` sets), decided in the
//! order of Ansible's Linux collector; `mounts`, with Ansible's filter (devices that are paths
//! or network shares) and `statvfs` sizes; `selinux` and `apparmor`.

use super::Raw;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeSet;

pub(super) fn facts(raw: &Raw, f: &mut Map<String, Json>) {
    let v = virtualization(raw);
    f.insert("virtualization_type".into(), json!(v.kind));
    f.insert("virtualization_role".into(), json!(v.role));
    f.insert("virtualization_tech_guest".into(), json!(v.guest));
    f.insert("virtualization_tech_host".into(), json!(v.host));
    f.insert("mounts".into(), Json::Array(mounts(raw)));
    // Without SELinux's Python library Ansible reports only a status; prov reads the kernel.
    let selinux = match (raw.get("selinux_fs"), raw.get("getenforce")) {
        (Some(_), Some(mode)) => json!({"status": "enabled", "mode": mode.to_lowercase()}),
        (Some(_), None) => json!({"status": "enabled"}),
        _ => json!({"status": "disabled"}),
    };
    f.insert("selinux".into(), selinux);
    let apparmor = if raw.get("apparmor").is_some() {
        "enabled"
    } else {
        "disabled"
    };
    f.insert("apparmor".into(), json!({"status": apparmor}));
}

/// What the host runs on, as Ansible decides it: the first technology found sets the type and
/// role; every one found goes in the sets.
#[derive(Debug, PartialEq)]
struct Virt {
    kind: String,
    role: String,
    guest: BTreeSet<String>,
    host: BTreeSet<String>,
}

impl Virt {
    fn guest(&mut self, tech: &str, kind: &str) {
        self.guest.insert(tech.into());
        self.first(kind, "guest");
    }

    fn host(&mut self, tech: &str, kind: &str) {
        self.host.insert(tech.into());
        self.first(kind, "host");
    }

    fn first(&mut self, kind: &str, role: &str) {
        if self.kind.is_empty() {
            self.kind = kind.into();
            self.role = role.into();
        }
    }
}

fn virtualization(raw: &Raw) -> Virt {
    let mut v = Virt {
        kind: String::new(),
        role: String::new(),
        guest: BTreeSet::new(),
        host: BTreeSet::new(),
    };
    let docker = regex::Regex::new(r"/docker(/|-[0-9a-f]+\.scope)").expect("valid regex");
    for line in raw.all("cgroup1") {
        if docker.is_match(line) {
            v.guest("docker", "docker");
        }
        if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
            v.guest("lxc", "lxc");
        }
        if line.contains("/system.slice/containerd.service") {
            v.guest("containerd", "containerd");
        }
    }
    for line in raw.all("environ1") {
        if line.contains("container=lxc") {
            v.guest("lxc", "lxc");
        }
        if line.contains("container=podman") {
            v.guest("podman", "podman");
        }
        if line.len() > "container=".len() {
            v.guest("container", "container");
        }
    }
    if let Some(vz) = raw.all("proc_vz").next()
        && !vz.contains("lve")
    {
        match vz.contains("bc") {
            true => v.host("openvz", "openvz"),
            false => v.guest("openvz", "openvz"),
        }
    }
    let systemd_container = raw.get("systemd_container");
    if let Some(c) = systemd_container {
        v.guest(c, c);
    }
    if raw.get("dockerenv").is_some() {
        v.guest("docker", "docker");
    }
    let containers = ["docker", "lxc", "podman", "openvz", "containerd"];
    if containers.iter().any(|c| v.guest.contains(*c)) || systemd_container.is_some() {
        v.guest.insert("container".into());
    }
    if let Some(caps) = raw.all("proc_xen").next() {
        match caps.contains("control_d") {
            true => v.host("xen", "xen"),
            false => v.guest("xen", "xen"),
        }
    }
    dmi(raw, &mut v);
    let cpu: Vec<&str> = raw.all("cpuinfo_virt").collect();
    if cpu
        .iter()
        .any(|l| l.starts_with("model name") && l.contains("QEMU Virtual CPU"))
    {
        v.guest("kvm", "kvm");
    }
    let modules: Vec<&str> = raw.all("module").collect();
    if modules.contains(&"kvm") {
        v.host("kvm", "kvm");
    }
    if modules.contains(&"vboxdrv") {
        v.host("virtualbox", "virtualbox");
    }
    if modules.contains(&"virtio") {
        v.guest("kvm", "kvm");
    }
    if raw.get("dev_kvm").is_some() {
        v.host("kvm", "kvm");
    }
    v.first("NA", "NA");
    v
}

/// The hypervisor a VM's firmware names.
fn dmi(raw: &Raw, v: &mut Virt) {
    let product = raw.get("dmi_product_name").unwrap_or("");
    let family = raw.get("dmi_product_family").unwrap_or("");
    let vendor = raw.get("dmi_sys_vendor").unwrap_or("");
    let bios = raw.get("dmi_bios_vendor").unwrap_or("");
    if [
        "KVM",
        "KVM Server",
        "Bochs",
        "AHV",
        "CloudStack KVM Hypervisor",
    ]
    .contains(&product)
    {
        v.guest("kvm", "kvm");
    }
    if vendor == "oVirt" {
        v.guest("oVirt", "oVirt");
    }
    if vendor == "Red Hat" && family == "RHV" {
        v.guest("RHV", "RHV");
    } else if vendor == "Red Hat" && product == "RHEV Hypervisor" {
        v.guest("RHEV", "RHEV");
    }
    if product.starts_with("VMware") {
        v.guest("VMware", "VMware");
    }
    if ["OpenStack Compute", "OpenStack Nova"].contains(&product) {
        v.guest("openstack", "openstack");
    }
    if bios == "Xen" {
        v.guest("xen", "xen");
    }
    if bios == "innotek GmbH" {
        v.guest("virtualbox", "virtualbox");
    }
    if ["Amazon EC2", "DigitalOcean", "Hetzner", "Linode"].contains(&bios) {
        v.guest("kvm", "kvm");
    }
    if [
        "QEMU",
        "Amazon EC2",
        "DigitalOcean",
        "Google",
        "Scaleway",
        "Nutanix",
    ]
    .contains(&vendor)
    {
        v.guest("kvm", "kvm");
    }
    if vendor == "KubeVirt" {
        v.guest("KubeVirt", "KubeVirt");
    }
    if vendor == "Microsoft Corporation" {
        v.guest("VirtualPC", "VirtualPC");
    }
    if vendor == "Parallels Software International Inc." {
        v.guest("parallels", "parallels");
    }
    if vendor == "OpenStack Foundation" {
        v.guest("openstack", "openstack");
    }
}

/// `mount` lines: device, mount point, type, options, dump, pass, then `stat -f`'s fragment
/// size, block size, blocks, free blocks, available blocks, inodes, free inodes.
fn mounts(raw: &Raw) -> Vec<Json> {
    raw.all("mount")
        .filter_map(|line| {
            let w: Vec<&str> = line.split(' ').collect();
            if w.len() < 6 {
                return None;
            }
            let n = |i: usize| w.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            let (frsize, bsize, blocks, bfree, bavail, files, ffree) =
                (n(6), n(7), n(8), n(9), n(10), n(11), n(12));
            Some(json!({
                "mount": unescape(w[1]),
                "device": unescape(w[0]),
                "fstype": w[2],
                "options": w[3],
                "dump": n(4),
                "passno": n(5),
                "size_total": frsize * blocks,
                "size_available": frsize * bavail,
                "block_size": bsize,
                "block_total": blocks,
                "block_available": bavail,
                "block_used": blocks.saturating_sub(bfree),
                "inode_total": files,
                "inode_available": ffree,
                "inode_used": files.saturating_sub(ffree),
                "uuid": "N/A",
            }))
        })
        .collect()
}

/// `/proc/mounts` writes a space in a path as `\040` (and tab, newline, backslash likewise).
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_of(out: &str) -> Map<String, Json> {
        let raw = Raw::new(out);
        let mut f = Map::new();
        facts(&raw, &mut f);
        f
    }

    #[test]
    fn containers_and_vms_as_ansible_names_them() {
        // An nspawn container read as root: /proc/1/environ comes first.
        let f = facts_of("environ1=container=systemd-nspawn\nsystemd_container=systemd-nspawn\n");
        assert_eq!(
            (
                f["virtualization_type"].clone(),
                f["virtualization_role"].clone()
            ),
            (json!("container"), json!("guest"))
        );
        assert_eq!(
            f["virtualization_tech_guest"],
            json!(["container", "systemd-nspawn"])
        );
        // Without root, only /run/systemd/container.
        let f = facts_of("systemd_container=systemd-nspawn\n");
        assert_eq!(f["virtualization_type"], "systemd-nspawn");
        let f = facts_of("cgroup1=0::/system.slice/docker-0123abcd.scope\ndockerenv=1\n");
        assert_eq!(f["virtualization_type"], "docker");
        let f = facts_of("dmi_product_name=KVM\ndmi_sys_vendor=QEMU\nmodule=virtio\n");
        assert_eq!(
            (
                f["virtualization_type"].clone(),
                f["virtualization_role"].clone()
            ),
            (json!("kvm"), json!("guest"))
        );
        let f = facts_of("dmi_product_name=VMware Virtual Platform\n");
        assert_eq!(f["virtualization_type"], "VMware");
        let f = facts_of("module=kvm\ndev_kvm=1\n");
        assert_eq!(
            (
                f["virtualization_type"].clone(),
                f["virtualization_role"].clone()
            ),
            (json!("kvm"), json!("host"))
        );
        let f = facts_of("");
        assert_eq!(
            (
                f["virtualization_type"].clone(),
                f["virtualization_role"].clone()
            ),
            (json!("NA"), json!("NA"))
        );
        assert_eq!(f["selinux"], json!({"status": "disabled"}));
        assert_eq!(f["apparmor"], json!({"status": "disabled"}));
    }

    #[test]
    fn mounts_with_statvfs_sizes() {
        let f = facts_of(
            "mount=/dev/sda1 /srv\\040data ext4 rw,relatime 0 0 4096 4096 1000 400 300 640 600\n",
        );
        let m = &f["mounts"][0];
        assert_eq!(m["mount"], "/srv data");
        assert_eq!(m["size_total"], 4096 * 1000);
        assert_eq!(m["size_available"], 4096 * 300);
        assert_eq!(m["block_used"], 600);
        assert_eq!(m["inode_used"], 40);
    }
}
