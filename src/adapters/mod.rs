//! Adapters: implementations of the ports (outbound) and the front ends that drive the app
//! (inbound). Only the composition root (`app::wiring`) and `src/bin` name these types.

pub mod inbound;
pub mod outbound;
