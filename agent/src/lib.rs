//! bloud-agent: app catalog, plans, queue, rebuilds, routes and the loopback API.
