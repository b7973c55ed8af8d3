//! The bitshoal reference client: a mio event loop around the sans-IO core.
//!
//! [`event_loop::EventLoop`] owns one [`Session`](bitshoal_core::session::Session) and its
//! sockets; disk and hash jobs go to a [`event_loop::JobSink`].

pub mod client;
pub mod event_loop;
mod lsd;
