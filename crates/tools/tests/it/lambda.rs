//! Lambda tools against moto in server mode.
