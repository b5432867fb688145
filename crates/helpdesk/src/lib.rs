//! Help desk: tickets from the portal and by mail, agents' queues, business-hours SLAs on each organisation's
//! calendar, the knowledge base and satisfaction surveys. So far it holds the SLA clock's two pure parts: the
//! business calendar (opening hours, Italian holidays, patron's day) and the arithmetic of deadlines on it.

pub mod calendar;
pub mod sla;
