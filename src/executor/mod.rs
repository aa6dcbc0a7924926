//! The executor: claims reconcile jobs, plans, and performs the plan through the Admin API,
//! journaling every action before and after its call.
//!
//! Guarantees:
//! - One worker at a time per person (the job lease), so a person's actions are serialized
//!   and two `keycard serve` processes never run the same action.
//! - No transaction is open during an Admin API call: the action is committed as `running`
//!   first, its outcome committed after.
//! - A crash between those two commits leaves the job leased; when the lease expires the
//!   next worker re-reads the Admin API state and re-plans, so the action completes once in
//!   effect (creating an invite that already exists is answered `invite_already_exists`,
//!   removing what is gone is a 404; both count as done).

mod act;
mod worker;

pub use act::perform;
pub use worker::{
    BeforeCall, Everyone, RetentionConfig, RetentionReport, SyncError, SyncReport, Worker,
    WorkerSettings,
};
