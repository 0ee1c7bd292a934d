//! Server-side rewriting of embedded apps' responses (Location, cookies, HTML, CSS).
