//! The smart home face: Alexa toward a smart home skill.
//!
//! Alexa invokes a smart home skill as a Lambda function: the event is the
//! directive envelope, the return value the answer (reference smarthome.md
//! §6). This face owns the skills and users declared in config and how a
//! skill is reached (`invoke`: a local command or an HTTP endpoint such as
//! the Lambda Runtime Interface Emulator) and the directives Alexa sends
//! (`directive`). The rules answers are judged by, the event gateway and the
//! registry build on these.

pub mod directive;
pub mod invoke;
pub mod judge;
pub mod skills;

pub use invoke::{Invocation, Outcome};
pub use skills::{SkillDecl, UserDecl};
