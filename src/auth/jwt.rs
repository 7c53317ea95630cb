//! Access tokens: the keys and claims live with the registry's other keys (`keys::jwt`), below
//! every module that shares the application state.

pub use crate::keys::jwt::*;
