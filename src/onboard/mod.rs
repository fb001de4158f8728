//! Onboarding a company: `init` writes a config repository from an HR export (and the live
//! network's groups), `dump` writes the live network as a simulator seed, `doctor` checks that a
//! repository is ready to apply. They read the HR export and the network and write new files;
//! they never change the network, the state ref or an existing file.

mod doctor;
mod dump;
mod export;
pub mod init;
mod propose;
mod similarity;
pub mod simulator;
mod yaml;

pub use doctor::doctor;
pub use dump::dump;
pub use init::init;
