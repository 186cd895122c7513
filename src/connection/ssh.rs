//! SSH connection (being written).
