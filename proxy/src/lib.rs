//! bloud-proxy: Traefik-compatible routing on Pingora.
