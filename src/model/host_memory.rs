//! How much memory this process may still take, for the loader's choice between running a model
//! resident and paging it: the system's `MemAvailable`, and the room under the memory limit of
//! every cgroup the process is in (cgroup v1's memory controller, or v2), whichever is least.
//!
//! A container or a game that gives the model a share of memory sets it with a cgroup, not with
//! the machine's size: there `MemAvailable` is the host's, and a model judged to fit by it is
//! killed by the cgroup's OOM killer as it loads (packed weights are anonymous memory). The page
//! cache charged to a cgroup counts as room (the kernel reclaims it before it kills).
//!
//! The kernel's files are read as text; no crate reads cgroup limits in both versions without
//! also pulling in a process-inspection library, so the few lines are here.

use std::path::{Path, PathBuf};

/// The bytes this process may still allocate, or `None` when nothing says.
pub(crate) fn available() -> Option<u64> {
    available_under(Path::new("/"))
}

/// [`available`] with the kernel's files under `root` (`/` but in tests).
fn available_under(root: &Path) -> Option<u64> {
    let system = read(root, "proc/meminfo").and_then(|m| meminfo_available(&m));
    let cgroup = cgroup_room(root);
    match (system, cgroup) {
        (Some(s), Some(c)) => Some(s.min(c)),
        (s, c) => s.or(c),
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn meminfo_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The file `rel` (a path without its leading `/`) under `root`, as text.
fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel.trim_start_matches('/'))).ok()
}

/// A number the kernel wrote alone in a file.
fn read_u64(dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The value of `key` in a `memory.stat` file.
fn stat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Limits at or above this mean "none" (cgroup v1 writes the largest page-aligned i64).
const NO_LIMIT: u64 = 1 << 62;

/// The least room under the memory limits of this process's cgroups, v1 and v2.
fn cgroup_room(root: &Path) -> Option<u64> {
    let membership = read(root, "proc/self/cgroup")?;
    let mounts = read(root, "proc/self/mountinfo").unwrap_or_default();
    let mut room: Option<u64> = None;
    let mut least = |r: u64| room = Some(room.map_or(r, |x| x.min(r)));
    for line in membership.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            if let Some(dir) = cgroup_dir(root, &mounts, "cgroup", Some("memory"), path) {
                if let Some(r) = room_v1(&dir) {
                    least(r);
                }
            }
        } else if controllers.is_empty() {
            if let Some(dir) = cgroup_dir(root, &mounts, "cgroup2", None, path) {
                if let Some(r) = room_v2(&dir, root) {
                    least(r);
                }
            }
        }
    }
    room
}

/// The directory of cgroup `path` in the mount of `fstype` (with the super option `option`, for
/// v1), from `/proc/self/mountinfo` (fields: id, parent, device, root, mount point, options, ...,
/// `-`, fstype, source, super options).
fn cgroup_dir(
    root: &Path,
    mounts: &str,
    fstype: &str,
    option: Option<&str>,
    path: &str,
) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let (mnt_root, mount_point) = (*l.get(3)?, *l.get(4)?);
        if *r.first()? != fstype {
            return None;
        }
        if let Some(o) = option {
            if !r.get(2)?.split(',').any(|x| x == o) {
                return None;
            }
        }
        let rel = path.strip_prefix(mnt_root).unwrap_or(path);
        let dir = root
            .join(mount_point.trim_start_matches('/'))
            .join(rel.trim_start_matches('/'));
        dir.is_dir().then_some(dir)
    })
}

/// Room under a cgroup v1 memory limit: the hierarchical limit (the least of the group's and its
/// ancestors') less the usage that is not page cache.
fn room_v1(dir: &Path) -> Option<u64> {
    let st = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
    let limit = stat(&st, "hierarchical_memory_limit")
        .or_else(|| read_u64(dir, "memory.limit_in_bytes"))?;
    if limit >= NO_LIMIT {
        return None;
    }
    let usage = read_u64(dir, "memory.usage_in_bytes")?;
    let cache = stat(&st, "total_cache")
        .or_else(|| stat(&st, "cache"))
        .unwrap_or(0);
    Some(limit.saturating_sub(usage.saturating_sub(cache)))
}

/// Room under cgroup v2 memory limits: for the group and each ancestor up to the mount, its
/// `memory.max` less its usage that is not page cache; the least of them.
fn room_v2(dir: &Path, root: &Path) -> Option<u64> {
    let mut room: Option<u64> = None;
    let mut d = Some(dir);
    while let Some(here) = d.filter(|p| p.starts_with(root) && p.join("memory.current").exists()) {
        let max = std::fs::read_to_string(here.join("memory.max")).ok();
        if let Some(limit) = max.and_then(|m| m.trim().parse::<u64>().ok()) {
            let current = read_u64(here, "memory.current").unwrap_or(0);
            let file = std::fs::read_to_string(here.join("memory.stat"))
                .ok()
                .and_then(|s| stat(&s, "file"))
                .unwrap_or(0);
            let r = limit.saturating_sub(current.saturating_sub(file));
            room = Some(room.map_or(r, |x| x.min(r)));
        }
        d = here.parent();
    }
    room
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory tree standing for `/`, removed when dropped.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new(name: &str) -> FakeRoot {
            let dir = std::env::temp_dir().join(format!("chord-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            FakeRoot(dir)
        }
        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const MEMINFO: &str =
        "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n";

    #[test]
    fn cgroup_v1_limit_less_non_cache_usage() {
        // As on this project's machines: v1 controllers, the memory one at a nested path.
        let r = FakeRoot::new("cg1");
        r.write("proc/meminfo", MEMINFO);
        r.write(
            "proc/self/cgroup",
            "5:devices:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n",
        );
        r.write(
            "proc/self/mountinfo",
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        );
        let g = "sys/fs/cgroup/memory/process_api/abc";
        r.write(
            &format!("{g}/memory.stat"),
            "cache 100\nhierarchical_memory_limit 2147483648\ntotal_cache 536870912\n",
        );
        r.write(
            &format!("{g}/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        r.write(&format!("{g}/memory.usage_in_bytes"), "805306368\n");
        // 2 GiB limit, 768 MiB used of which 512 MiB page cache: 1.75 GiB of room.
        assert_eq!(
            available_under(&r.0),
            Some(2048 * 1024 * 1024 - 256 * 1024 * 1024)
        );
        // No limit: the system's figure.
        r.write(
            &format!("{g}/memory.stat"),
            "hierarchical_memory_limit 9223372036854771712\ntotal_cache 0\n",
        );
        assert_eq!(available_under(&r.0), Some(20_000_000 * 1024));
    }

    #[test]
    fn cgroup_v2_least_room_of_group_and_ancestors() {
        let r = FakeRoot::new("cg2");
        r.write("proc/meminfo", MEMINFO);
        r.write("proc/self/cgroup", "0::/game/llm\n");
        r.write(
            "proc/self/mountinfo",
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let (top, leaf) = ("sys/fs/cgroup/game", "sys/fs/cgroup/game/llm");
        r.write(&format!("{top}/memory.max"), "3221225472\n");
        r.write(&format!("{top}/memory.current"), "2147483648\n");
        r.write(&format!("{top}/memory.stat"), "anon 1\nfile 0\n");
        r.write(&format!("{leaf}/memory.max"), "max\n");
        r.write(&format!("{leaf}/memory.current"), "1073741824\n");
        r.write(&format!("{leaf}/memory.stat"), "anon 1\nfile 1073741824\n");
        // The leaf has no limit; the parent's 3 GiB less its 2 GiB of anonymous memory leaves 1.
        assert_eq!(available_under(&r.0), Some(1 << 30));
        // Without cgroup files at all: the system's figure.
        let bare = FakeRoot::new("cg0");
        bare.write("proc/meminfo", MEMINFO);
        assert_eq!(available_under(&bare.0), Some(20_000_000 * 1024));
    }
}
