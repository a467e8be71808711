//! A programmable, misbehaving origin server (see issue 2).
