//! Tickets: model.
