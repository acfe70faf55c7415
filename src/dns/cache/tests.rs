//! The cache's keys, fills, expiry and eviction, without sockets.
