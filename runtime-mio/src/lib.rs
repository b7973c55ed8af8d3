//! The bitshoal reference client: a mio event loop around the sans-IO core.
