//! Tickets: store.
