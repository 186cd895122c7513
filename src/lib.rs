//! prov: an agentless, Ansible-style provisioning engine. See DESIGN notes in the README.

pub mod connection;
pub mod diag;
pub mod modules;
pub mod template;
pub mod yaml;
