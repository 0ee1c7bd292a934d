//! The CLI's way in: a Unix socket instead of trust by address.
//!
//! Over TCP every process on the box looks alike (app containers use host networking), so a
//! loopback peer proves nothing. A Unix socket tells who is calling: the kernel reports the peer's
//! uid, gid and pid (`SO_PEERCRED`). A connection is accepted when the peer is root, the agent's
//! own user, or a member of the admin group (primary or supplementary group); its requests then
//! carry [`LocalAdmin`]. Others get 403 with what to do. The file mode (0660, group = the admin
//! group when it exists) is a second fence in front of that check, not a replacement for it.
//!
//! The socket is a path, never an abstract name: abstract sockets belong to the network
//! namespace, which host-networked app containers share.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use axum::Json;
use tokio::net::UnixListener;

use crate::auth::LocalAdmin;

/// The file mode of the socket: owner and group may connect.
pub const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the CLI socket {}: {source} (setting `socket`)", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error(
        "another bloud-agent is listening on {} (setting `socket`); stop it first",
        path.display()
    )]
    InUse { path: PathBuf },
    #[error(
        "{} exists and is not a socket; remove it or choose another path (setting `socket`)",
        path.display()
    )]
    NotASocket { path: PathBuf },
}

/// Who may use the socket.
#[derive(Debug, Clone)]
pub struct Policy {
    pub own_uid: u32,
    pub group_name: String,
    /// `None` when the group does not exist on this system.
    pub group_id: Option<u32>,
}

impl Policy {
    /// The policy for the agent's own user and `group` (looked up now).
    pub fn new(group: &str) -> Policy {
        Policy {
            // SAFETY: geteuid has no preconditions and cannot fail.
            own_uid: unsafe { libc::geteuid() },
            group_name: group.to_string(),
            group_id: group_id(group),
        }
    }

    pub fn allows(&self, peer: &Peer) -> bool {
        let Some(uid) = peer.uid else { return false };
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some(gid) = self.group_id else {
            return false;
        };
        peer.gid == Some(gid) || peer.groups.contains(&gid)
    }

    fn refusal(&self, peer: &Peer) -> String {
        let who = match peer.uid {
            Some(uid) => format!("uid {uid}"),
            None => "a peer whose credentials could not be read".to_string(),
        };
        format!(
            "{who} may not use bloud-agent's socket: run as root or add your user to group {} \
             (then log in again)",
            self.group_name
        )
    }
}

/// The credentials of a socket peer, read when the connection is accepted.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
    /// Supplementary groups of the peer process.
    pub groups: Vec<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(cred) => {
                let pid = cred.pid();
                let groups = pid
                    .map(|pid| supplementary_groups(pid, cred.uid()))
                    .unwrap_or_default();
                Peer {
                    uid: Some(cred.uid()),
                    gid: Some(cred.gid()),
                    pid,
                    groups,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "socket peer credentials unreadable; refusing");
                Peer::default()
            }
        }
    }
}

/// The `Groups:` of `/proc/<pid>/status`, only if that process still belongs to `uid` (a pid
/// reused by another user's process must not lend its groups). Empty when unreadable.
fn supplementary_groups(pid: i32, uid: u32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // Real, effective, saved and filesystem uid: all must be the peer's.
    let uids = field("Uid:");
    if uids.is_empty() || uids.iter().any(|u| *u != uid) {
        return Vec::new();
    }
    field("Groups:")
}

/// The gid of group `name`, if it exists.
pub fn group_id(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all pointers are valid for the call; getgrnam_r writes only into `grp` and
        // `buf` (whose length it is given) and sets `result` to null or to `&grp`.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(grp.gr_gid);
    }
}

/// Binds the socket at `path`: a stale socket from an earlier run is removed (a live one is an
/// error), the parent directory is created if missing, the mode is 0660 and the group is
/// `policy`'s when it exists.
pub async fn bind(path: &Path, policy: &Policy) -> Result<UnixListener, SocketError> {
    let bind_err = |source| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(SocketError::InUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        Ok(_) => {
            return Err(SocketError::NotASocket {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(bind_err)?;
    match policy.group_id {
        Some(gid) => {
            if let Err(e) = std::os::unix::fs::chown(path, None, Some(gid)) {
                tracing::warn!(
                    error = %e,
                    group = %policy.group_name,
                    "cannot give the socket to the admin group; only root and the agent's user can use the CLI \
                     (is the agent's user a member of the group?)"
                );
            }
        }
        None => tracing::info!(
            group = %policy.group_name,
            "the admin group does not exist; only root and the agent's user can use the CLI"
        ),
    }
    Ok(listener)
}

/// Middleware of the socket's router: accepted peers act as [`LocalAdmin`], others get 403.
pub async fn gate(
    State(policy): State<Arc<Policy>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut req: Request,
    next: Next,
) -> Response {
    match peer.uid {
        Some(uid) if policy.allows(&peer) => {
            req.extensions_mut().insert(LocalAdmin { uid });
            next.run(req).await
        }
        _ => {
            tracing::warn!(uid = ?peer.uid, pid = ?peer.pid, "socket peer refused");
            (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({ "error": policy.refusal(&peer) })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid: Some(uid),
            gid: Some(gid),
            pid: None,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn who_may_use_the_socket() {
        let policy = Policy {
            own_uid: 990,
            group_name: "bloud-admin".into(),
            group_id: Some(977),
        };
        let no_group = Policy {
            group_id: None,
            ..policy.clone()
        };
        // (peer, allowed with the group, allowed when the group does not exist)
        let table = [
            (peer(0, 0, &[]), true, true),
            (peer(990, 990, &[]), true, true),
            (peer(1000, 977, &[]), true, false),
            (peer(1000, 100, &[27, 977]), true, false),
            (peer(1000, 100, &[27]), false, false),
            (peer(65534, 65534, &[]), false, false),
            (Peer::default(), false, false),
        ];
        for (p, with, without) in table {
            assert_eq!(policy.allows(&p), with, "{p:?}");
            assert_eq!(no_group.allows(&p), without, "{p:?} without the group");
        }
        assert!(policy
            .refusal(&peer(65534, 65534, &[]))
            .contains("run as root or add your user to group bloud-admin"));
    }

    #[test]
    fn groups_are_looked_up_by_name() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-bloud-test"), None);
    }

    #[test]
    fn own_process_groups_are_read() {
        let pid = std::process::id() as i32;
        // SAFETY: no preconditions.
        let uid = unsafe { libc::getuid() };
        let groups = std::fs::read_to_string("/proc/self/status").unwrap();
        let listed = groups
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .unwrap()
            .split_whitespace()
            .count();
        assert_eq!(supplementary_groups(pid, uid).len(), listed);
        // Another uid's view of this pid lends nothing.
        assert!(supplementary_groups(pid, uid.wrapping_add(1)).is_empty());
    }
}
