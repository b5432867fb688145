//! Tickets: service.
