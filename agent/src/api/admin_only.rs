//! Middleware for the routes only an administrator may use (managing apps and users): a
//! signed-in admin, or the CLI (`LocalAdmin`, accepted by its peer credentials). A member gets
//! 403 from the server, whatever the shell shows. Runs inside `require_session`, so a request
//! that reaches it has either a `User` or a `LocalAdmin` extension; having neither is refused.

use axum::extract::Request;
use axum::http::{Extensions, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error;
use crate::auth::LocalAdmin;
use crate::db::{Role, User};

/// Who is asking, as far as permissions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The CLI over the Unix socket: admin, no session, no step-up.
    Local,
    Admin(User),
    Member(User),
}

impl Caller {
    pub fn from_user(user: User) -> Caller {
        match user.role {
            Role::Admin => Caller::Admin(user),
            Role::Member => Caller::Member(user),
        }
    }

    pub fn of(ext: &Extensions) -> Option<Caller> {
        if let Some(user) = ext.get::<User>() {
            return Some(Caller::from_user(user.clone()));
        }
        ext.get::<LocalAdmin>().map(|_| Caller::Local)
    }

    pub fn is_admin(&self) -> bool {
        !matches!(self, Caller::Member(_))
    }

    /// The member whose view must be filtered, if the caller is one.
    pub fn member(&self) -> Option<&User> {
        match self {
            Caller::Member(u) => Some(u),
            _ => None,
        }
    }
}

/// Handlers take `caller: Caller`; only routes behind `require_session` use it.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Caller::of(&parts.extensions)
            .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Not authenticated"))
    }
}

pub async fn require_admin(req: Request, next: Next) -> Response {
    match Caller::of(req.extensions()) {
        Some(c) if c.is_admin() => next.run(req).await,
        Some(_) => error(
            StatusCode::FORBIDDEN,
            "Only an administrator can do this; ask one of your Bloud's admins",
        ),
        None => error(StatusCode::UNAUTHORIZED, "Not authenticated"),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn user(role: Role) -> User {
        User {
            id: "u".into(),
            username: "someone".into(),
            role,
        }
    }

    #[tokio::test]
    async fn only_admins_and_the_cli_pass() {
        let cases: &[(&str, Option<User>, Option<LocalAdmin>, u16)] = &[
            ("admin", Some(user(Role::Admin)), None, 200),
            ("member", Some(user(Role::Member)), None, 403),
            ("cli", None, Some(LocalAdmin { uid: 0 }), 200),
            // A member's session on a CLI request still counts as the member.
            (
                "member over the socket",
                Some(user(Role::Member)),
                Some(LocalAdmin { uid: 0 }),
                403,
            ),
            ("nobody", None, None, 401),
        ];
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route_layer(axum::middleware::from_fn(require_admin));
        for (name, u, local, want) in cases {
            let mut req = Request::new(Body::empty());
            if let Some(u) = u {
                req.extensions_mut().insert(u.clone());
            }
            if let Some(l) = local {
                req.extensions_mut().insert(*l);
            }
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status().as_u16(), *want, "{name}");
        }
    }
}
