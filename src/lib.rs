//! prov: an agentless, Ansible-style provisioning engine.
//!
//! Layers, data flowing one way: `cli` → `app` → `inventory` + `playbook` (load, with spans) →
//! `plan` (graph of (host, task) nodes) → `run` (scheduler) → `modules` → `host` → `connection`;
//! `events` → `output`. ARCHITECTURE.md describes each layer.

pub mod app;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod connection;
pub mod diag;
pub mod events;
pub mod facts;
pub mod host;
pub mod inventory;
pub mod lab;
pub mod modules;
pub mod output;
pub mod plan;
pub mod playbook;
pub mod prompt;
pub mod run;
pub mod search_path;
pub mod shell;
pub mod template;
pub mod timer;
pub mod vault;
pub mod yaml;
